"""A small consumer loop for a standard queue, shaped like the shared runtime's Handler.

The shared worker runtime is being split into a generic consumer
(``limbo_shared.worker.consumer``: ``Handler.handle(message) -> Outcome``); until that
lands, this loop runs the events handler with the same interface: long polls, one task
per message (bounded), deletes in batches, retries by visibility, SIGTERM drain.
"""

from __future__ import annotations

import asyncio
from dataclasses import dataclass
from typing import Protocol

from limbo_shared.batching import Batcher
from limbo_shared.logs import get_logger
from limbo_shared.queue import QueueUnavailable, ReceivedMessage, SqsQueue

__all__ = ["Consumer", "DeadLetter", "Done", "Handler", "Outcome", "Retry"]

log = get_logger("limbo.events")


@dataclass(frozen=True)
class Done:
    """Handled (or nothing to do): delete the message."""


@dataclass(frozen=True)
class Retry:
    reason: str
    delay: float


@dataclass(frozen=True)
class DeadLetter:
    """Never applicable (not authentic, not an event): removed from the queue, counted."""

    reason: str
    outcome: str


Outcome = Done | Retry | DeadLetter


class Handler(Protocol):
    name: str

    async def handle(self, message: ReceivedMessage) -> Outcome: ...

    async def aclose(self) -> None: ...


class Consumer:
    def __init__(
        self, queue: SqsQueue, handler: Handler, *, concurrency: int, wait_seconds: int
    ) -> None:
        self.queue = queue
        self.handler = handler
        self.ready = False
        self._slots = asyncio.Semaphore(concurrency)
        self._pollers = max(1, -(-concurrency // 10))
        self._wait_seconds = wait_seconds
        self._stopping = asyncio.Event()
        self._tasks: set[asyncio.Task[None]] = set()
        self._deleter: Batcher[str, None] = Batcher(
            queue.delete_batch, max_items=10, max_in_flight=2, linger=0.005
        )
        self._visibility: Batcher[tuple[str, int], None] = Batcher(
            queue.change_visibility_batch, max_items=10, max_in_flight=2
        )

    @property
    def stopping(self) -> bool:
        return self._stopping.is_set()

    def stop(self) -> None:
        self._stopping.set()

    async def run(self, grace: float) -> None:
        pollers = [asyncio.create_task(self._poll()) for _ in range(self._pollers)]
        log.info("consumer started", queue=self.queue.name, handler=self.handler.name)
        await self._stopping.wait()
        if self._tasks:
            await asyncio.wait(set(self._tasks), timeout=grace)
        for task in pollers:
            task.cancel()
        await asyncio.gather(*pollers, return_exceptions=True)
        await self._deleter.aclose()
        await self._visibility.aclose()

    async def _poll(self) -> None:
        while not self.stopping:
            # Receive only what there are free slots for.
            await self._slots.acquire()
            free = 1
            while free < 10 and not self._slots.locked():
                await self._slots.acquire()
                free += 1
            try:
                messages = await self.queue.receive(
                    max_messages=free, wait_seconds=self._wait_seconds
                )
                self.ready = True
            except QueueUnavailable as error:
                self.ready = False
                for _ in range(free):
                    self._slots.release()
                log.warning("receive failed", error=str(error))
                await asyncio.sleep(1.0)
                continue
            except asyncio.CancelledError:
                for _ in range(free):
                    self._slots.release()
                raise
            for _ in range(free - len(messages)):
                self._slots.release()
            for message in messages:
                task = asyncio.create_task(self._handle(message))
                self._tasks.add(task)
                task.add_done_callback(self._tasks.discard)

    async def _handle(self, message: ReceivedMessage) -> None:
        try:
            try:
                outcome = await self.handler.handle(message)
            except Exception as error:  # a bug must not kill the loop; SQS redelivers
                log.exception("event handler failed", error=type(error).__name__)
                outcome = Retry(type(error).__name__, 30)
            if isinstance(outcome, Retry):
                await self._visibility.submit((message.receipt_handle, int(outcome.delay)))
            else:
                await self._deleter.submit(message.receipt_handle)
        except QueueUnavailable as error:
            log.warning("settling failed; the message comes back", error=str(error))
        finally:
            self._slots.release()
