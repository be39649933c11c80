"""The consumer runtime: receive, handle, settle, drain; and the sending workers on it."""

from .consumer import (
    Consumer,
    DeadLetter,
    Defer,
    Done,
    Handler,
    Outcome,
    Retry,
    Unavailable,
)
from .mail import MailHandler
from .main import run_consumer, run_worker
from .runtime import Worker
from .settings import ConsumerSettings, WorkerSettings

__all__ = [
    "Consumer",
    "ConsumerSettings",
    "DeadLetter",
    "Defer",
    "Done",
    "Handler",
    "MailHandler",
    "Outcome",
    "Retry",
    "Unavailable",
    "Worker",
    "WorkerSettings",
    "run_consumer",
    "run_worker",
]
