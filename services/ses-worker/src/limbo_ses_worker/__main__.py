"""``limbo-ses-worker``: sends queued mail through AWS SES v2."""

from __future__ import annotations

from limbo_shared.config import load_settings
from limbo_shared.worker import WorkerSettings, run_worker

from .provider import SesProvider, SesSettings


def build_provider(settings: WorkerSettings) -> SesProvider:
    return SesProvider(load_settings(SesSettings), max_connections=settings.concurrency)


def main() -> None:
    run_worker("limbo-ses-worker", build_provider)


if __name__ == "__main__":
    main()
