"""``limbo-mailgun-worker``: sends queued mail through Mailgun."""

from __future__ import annotations

from limbo_shared.config import load_settings
from limbo_shared.worker import WorkerSettings, run_worker

from .provider import MailgunProvider, MailgunSettings


def build_provider(settings: WorkerSettings) -> MailgunProvider:
    return MailgunProvider(load_settings(MailgunSettings), max_connections=settings.concurrency)


def main() -> None:
    run_worker("limbo-mailgun-worker", build_provider)


if __name__ == "__main__":
    main()
