"""Coalesce concurrent single-item calls into batch calls, without waiting for company.

A lone item is flushed at once; while ``max_in_flight`` batch calls are running, new
items wait and leave together in the next call. Under load that fills batches (SQS
bills per request, a batch of ten is one request); at low load nobody waits. A caller
whose items are not latency-critical (the worker's deletes) gives a ``linger``: a
partial batch then leaves once its oldest item has waited that long, a full one at once,
and everything at once after :meth:`Batcher.hurry` (draining) or :meth:`Batcher.aclose`.
A runner woken because the batch filled, that finds another runner took it, goes back
to lingering rather than sending what is left alone.

A latency-critical caller (the API) gives ``company`` instead: the longest a partial
batch waits while items keep arriving close together, which is what a burst looks like
and a trickle does not. Before sending, a runner lets the event loop turn a few times,
so requests whose bytes have already arrived reach the batcher first (microseconds when
nothing is waiting). Then a batch whose newest item came less than ``company_gap``
(``COMPANY_GAP``) after the one before it, while an earlier item was still unanswered,
waits: until it is full, until that gap passes with no new item, or until its oldest item
has waited ``company``. An item that came alone leaves at once, so a trickle waits for
nothing, and neither does one caller whose items each follow the last one's answer.

An item is sent even when its waiter is cancelled (a delete must still happen after a
shutdown gave up waiting for it); a caller that must not have it sent once it stopped
waiting (the API, which answers 503 at its deadline) enqueues a :class:`Ticket` and
withdraws it, which works as long as the item has not left in a batch yet.
"""

from __future__ import annotations

import asyncio
import contextlib
from collections import deque
from collections.abc import Awaitable, Callable, Sequence
from dataclasses import dataclass
from typing import Generic, TypeVar

__all__ = ["BatchFlush", "Batcher", "Ticket"]

# Items arriving less than this apart are a burst (the API takes ≈ 2 ms per request
# under load; a trickle of 10/s is 100 ms apart).
COMPANY_GAP = 0.01
# Event-loop turns a runner yields before sending: a request read from its socket in
# one turn reaches the batcher in the next (uvicorn parses, then the app's task runs).
SETTLE_TURNS = 3

T = TypeVar("T")
R = TypeVar("R")

# The flush callable answers one result per item, in order: a value, or the exception
# that item failed with. An exception raised by the callable fails the whole batch.
BatchFlush = Callable[[Sequence[T]], Awaitable[Sequence["R | BaseException"]]]


@dataclass
class Ticket(Generic[T, R]):
    """One enqueued item: its result to come, and whether it has left in a batch."""

    item: T
    size: int
    future: asyncio.Future[R]
    sent: bool = False
    queued_at: float = 0.0  # the event loop's clock
    # Queued less than the batcher's company gap after the item before it, while an
    # earlier item still waited for its answer: a burst.
    close: bool = False

    def withdraw(self) -> bool:
        """Take the item back; False when it is already on its way (or settled)."""
        if self.sent or self.future.done():
            return False
        self.future.cancel()  # the batch runners skip cancelled tickets
        return True


class Batcher(Generic[T, R]):
    def __init__(
        self,
        flush: Callable[[Sequence[T]], Awaitable[Sequence[R | BaseException]]],
        *,
        max_items: int = 10,
        max_bytes: int | None = None,
        size_of: Callable[[T], int] | None = None,
        max_in_flight: int = 4,
        linger: float = 0.0,
        company: float = 0.0,
        company_gap: float = COMPANY_GAP,
        on_batch: Callable[[int], None] | None = None,
    ) -> None:
        if max_items < 1 or max_in_flight < 1:
            raise ValueError("max_items and max_in_flight must be at least 1")
        self._flush = flush
        self._max_items = max_items
        self._max_bytes = max_bytes
        self._size_of = size_of
        self._max_in_flight = max_in_flight
        self._linger = linger
        self._company = company
        self._gap = company_gap
        self._last_queued = float("-inf")
        self._flushing = 0  # items in batch calls that have not answered yet
        self._on_batch = on_batch
        self._pending: deque[Ticket[T, R]] = deque()
        self._runners: set[asyncio.Task[None]] = set()
        self._closed = False
        # Set when a lingering batch should leave now: it is full, or we are closing.
        self._wake = asyncio.Event()

    @property
    def pending(self) -> int:
        return len(self._pending)

    async def submit(self, item: T) -> R:
        """Queue ``item`` for the next batch call and wait for its own result.

        Cancelling the wait does not withdraw the item: it is still sent.
        """
        return await asyncio.shield(self.enqueue(item).future)

    def enqueue(self, item: T) -> Ticket[T, R]:
        """Queue ``item`` for the next batch call; await the ticket's future for its result."""
        if self._closed:
            raise RuntimeError("batcher is closed")
        loop = asyncio.get_running_loop()
        size = self._size_of(item) if self._size_of else 0
        if self._max_bytes is not None and size > self._max_bytes:
            raise ValueError(f"item of {size} bytes exceeds the batch limit of {self._max_bytes}")
        now = loop.time()
        entry: Ticket[T, R] = Ticket(
            item,
            size,
            loop.create_future(),
            queued_at=now,
            # Only concurrent callers make a burst: one client sending its requests one
            # after the other, each as soon as the last was answered, has nothing to
            # wait for however close together they come.
            close=now - self._last_queued < self._gap and bool(self._pending or self._flushing),
        )
        self._last_queued = now
        self._pending.append(entry)
        if len(self._pending) >= self._max_items:
            self._wake.set()
        self._start_runners()
        return entry

    def hurry(self) -> None:
        """Stop lingering: what is pending leaves now, and so will what comes later."""
        self._linger = 0.0
        self._company = 0.0
        self._wake.set()

    def _start_runners(self) -> None:
        while self._pending and len(self._runners) < self._max_in_flight:
            # Never more runners than batches worth of pending items.
            if len(self._runners) * self._max_items >= len(self._pending) and self._runners:
                break
            task = asyncio.get_running_loop().create_task(self._run())
            self._runners.add(task)
            task.add_done_callback(self._runners.discard)

    def _take_batch(self) -> list[Ticket[T, R]]:
        batch: list[Ticket[T, R]] = []
        total = 0
        while self._pending and len(batch) < self._max_items:
            nxt = self._pending[0]
            if nxt.future.done():  # withdrawn: nobody wants it sent any more
                self._pending.popleft()
                continue
            if self._max_bytes is not None and batch and total + nxt.size > self._max_bytes:
                break
            batch.append(self._pending.popleft())
            nxt.sent = True
            total += nxt.size
        return batch

    async def _run(self) -> None:
        try:
            while self._pending:
                await self._wait_for_company()
                batch = self._take_batch()
                if not batch:
                    return
                if self._on_batch is not None:
                    self._on_batch(len(batch))
                self._flushing += len(batch)
                try:
                    results = await self._flush([entry.item for entry in batch])
                    if len(results) != len(batch):
                        raise RuntimeError(
                            f"flush answered {len(results)} results for {len(batch)} items"
                        )
                except BaseException as error:
                    for entry in batch:
                        if not entry.future.done():
                            entry.future.set_exception(error)
                    if isinstance(error, asyncio.CancelledError):
                        raise
                    continue
                finally:
                    self._flushing -= len(batch)
                for entry, result in zip(batch, results, strict=True):
                    if entry.future.done():
                        continue
                    if isinstance(result, BaseException):
                        entry.future.set_exception(result)
                    else:
                        entry.future.set_result(result)
        finally:
            # Leave the set in this same step, not in a done-callback: an item queued
            # between this runner's last look at the queue and that callback would find
            # the runner still "running", start none, and wait for ever.
            task = asyncio.current_task()
            if task is not None:
                self._runners.discard(task)

    async def _wait_for_company(self) -> None:
        """Linger while the batch is partial and its oldest item has not waited ``linger``,
        or (``company``) while items of a burst keep coming."""
        if self._company:
            await self._wait_for_burst()
            return
        loop = asyncio.get_running_loop()
        while self._linger and self._pending and len(self._pending) < self._max_items:
            left = self._pending[0].queued_at + self._linger - loop.time()
            if left <= 0:
                return
            self._wake.clear()
            with contextlib.suppress(TimeoutError):
                await asyncio.wait_for(self._wake.wait(), left)

    async def _wait_for_burst(self) -> None:
        loop = asyncio.get_running_loop()
        for _ in range(SETTLE_TURNS):
            if not self._company or len(self._pending) >= self._max_items:
                return
            await asyncio.sleep(0)
        while self._company and 0 < len(self._pending) < self._max_items:
            newest = self._pending[-1]
            if not newest.close:
                return  # it came alone: nothing says more is on its way
            now = loop.time()
            left = min(
                newest.queued_at + self._gap - now,
                self._pending[0].queued_at + self._company - now,
            )
            if left <= 0:
                return
            self._wake.clear()
            with contextlib.suppress(TimeoutError):
                await asyncio.wait_for(self._wake.wait(), left)

    async def aclose(self) -> None:
        """Stop taking items and wait until everything submitted has been flushed."""
        self._closed = True
        self.hurry()
        while self._runners:
            await asyncio.gather(*list(self._runners), return_exceptions=True)
