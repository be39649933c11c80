"""The worker runtime every provider worker runs: receive, send, settle, drain."""

from .main import run_worker
from .runtime import Worker
from .settings import WorkerSettings

__all__ = ["Worker", "WorkerSettings", "run_worker"]
