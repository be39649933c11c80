"""``Worker``: the consumer with the mail handler, as the sending workers run it."""

from __future__ import annotations

from ..provider import Provider
from .consumer import Consumer, DeadLetterQueue, SourceQueue
from .mail import MailHandler
from .metrics import WorkerMetrics
from .ratelimit import RateLimiter
from .settings import WorkerSettings
from .tracking import Tracker

__all__ = ["Worker"]


class Worker(Consumer):
    """Receive queued email, send it through ``provider``, settle it."""

    def __init__(
        self,
        settings: WorkerSettings,
        provider: Provider,
        queue: SourceQueue,
        dead_letters: DeadLetterQueue,
        metrics: WorkerMetrics | None = None,
        tracker: Tracker | None = None,
        *,
        max_attempts: int | None = None,
        limiter: RateLimiter | None = None,
    ) -> None:
        metrics = metrics or WorkerMetrics(provider.name)
        self.mail = MailHandler(
            settings,
            provider,
            tracker=tracker,
            metrics=metrics,
            max_attempts=max_attempts,
            limiter=limiter,
        )
        super().__init__(
            self.mail, settings, queue, dead_letters, metrics, max_attempts=max_attempts
        )
