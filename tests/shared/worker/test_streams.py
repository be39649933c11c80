"""One consumer per stream: bulk has slots of its own and never takes a transactional one."""

from __future__ import annotations

import asyncio
import time

from limbo_shared.queue import ReceivedMessage
from limbo_shared.worker.consumer import Done, Outcome
from limbo_shared.worker.streams import bulk_settings, stream_consumers

from .conftest import QUEUE, Running, consumer_settings
from .fakes import FakeDeadLetters, FakeQueue, wait_until

BULK = "http://sqs.invalid/123/fake-bulk.fifo"


class StreamHandler:
    """Bulk sends take 0.2 s; records when each transactional message was handled."""

    name = "streams"

    def __init__(self) -> None:
        self.bulk_running = 0
        self.most_bulk_running = 0
        self.transactional_at: list[float] = []

    async def handle(self, message: ReceivedMessage) -> Outcome:
        if message.body.startswith("bulk"):
            self.bulk_running += 1
            self.most_bulk_running = max(self.most_bulk_running, self.bulk_running)
            try:
                await asyncio.sleep(0.2)
            finally:
                self.bulk_running -= 1
        else:
            self.transactional_at.append(time.monotonic())
        return Done("sent")

    async def aclose(self) -> None:
        pass


def test_without_bulk_queue_there_is_one_consumer() -> None:
    assert bulk_settings(consumer_settings()) is None
    assert bulk_settings(consumer_settings(bulk_queue=QUEUE)) is None
    bulk = bulk_settings(consumer_settings(bulk_queue=BULK, bulk_concurrency=3))
    assert bulk is not None and bulk.queue == BULK and bulk.concurrency == 3


async def test_a_bulk_backlog_does_not_delay_transactional_mail() -> None:
    queues = {QUEUE: FakeQueue(fifo=True), BULK: FakeQueue(fifo=True, name="fake-bulk.fifo")}
    for i in range(300):
        queues[BULK].put(f"bulk{i}", group=f"newsletter.{i % 16}")
    handler = StreamHandler()
    settings = consumer_settings(bulk_queue=BULK, concurrency=20, bulk_concurrency=4)
    consumers = stream_consumers(
        handler, settings, queues.__getitem__, FakeDeadLetters(), max_attempts=5
    )
    assert [c.queue for c in consumers] == [queues[QUEUE], queues[BULK]]
    runs = [Running(consumer) for consumer in consumers]
    try:
        await wait_until(lambda: handler.bulk_running == 4)
        submitted = time.monotonic()
        queues[QUEUE].put("password reset", group="shop.0")
        await wait_until(lambda: handler.transactional_at, timeout=5)
        assert handler.transactional_at[0] - submitted < 0.5
        # Bulk keeps draining, never beyond its own slots.
        await asyncio.sleep(0.5)
        assert handler.most_bulk_running == 4
        # Its deletes wait up to a second for company before they leave.
        await wait_until(lambda: queues[BULK].depth < 300, timeout=5)
    finally:
        for run in runs:
            await run.stop()
