"""One consumer per stream, transactional first.

The transactional consumer has ``CONCURRENCY`` slots; the bulk consumer (with
``BULK_QUEUE``) has ``BULK_CONCURRENCY`` of its own and never one of those, so a bulk
backlog draining at full speed cannot stop a transactional message from being received
and sent at once. Both share the handler (provider, status store, circuits) and the
dead-letter queue. Without ``BULK_QUEUE`` there is one consumer: the API then puts bulk
mail on ``QUEUE`` too.
"""

from __future__ import annotations

from collections.abc import Callable

from .consumer import Consumer, DeadLetterQueue, Handler, SourceQueue
from .metrics import WorkerMetrics
from .settings import ConsumerSettings

__all__ = ["bulk_settings", "stream_consumers"]


def bulk_settings(settings: ConsumerSettings) -> ConsumerSettings | None:
    """The bulk consumer's settings: BULK_QUEUE with BULK_CONCURRENCY, else None."""
    if settings.bulk_queue is None or settings.bulk_queue == settings.queue:
        return None
    return settings.model_copy(
        update={"queue": settings.bulk_queue, "concurrency": settings.bulk_concurrency}
    )


def stream_consumers(
    handler: Handler,
    settings: ConsumerSettings,
    queue_at: Callable[[str], SourceQueue],
    dead_letters: DeadLetterQueue | None,
    *,
    max_attempts: int,
) -> list[Consumer]:
    consumers = [
        Consumer(
            handler,
            settings,
            queue_at(settings.queue),
            dead_letters,
            WorkerMetrics(handler.name, "transactional"),
            max_attempts=max_attempts,
        )
    ]
    bulk = bulk_settings(settings)
    if bulk is not None:
        consumers.append(
            Consumer(
                handler,
                bulk,
                queue_at(bulk.queue),
                dead_letters,
                WorkerMetrics(handler.name, "bulk"),
                max_attempts=max_attempts,
            )
        )
    return consumers
