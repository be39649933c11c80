"""The batcher coalesces concurrent calls without making a lone call wait."""

from __future__ import annotations

import asyncio
from collections.abc import Sequence

import pytest

from limbo_shared.batching import Batcher, Ticket


class Recorder:
    def __init__(self, delay: float = 0.0) -> None:
        self.calls: list[list[int]] = []
        self.delay = delay

    async def flush(self, items: Sequence[int]) -> list[int | BaseException]:
        self.calls.append(list(items))
        await asyncio.sleep(self.delay)
        return [ValueError(f"odd {i}") if i < 0 else i * 10 for i in items]


async def test_lone_item_is_flushed_at_once() -> None:
    recorder = Recorder()
    batcher: Batcher[int, int] = Batcher(recorder.flush)
    assert await asyncio.wait_for(batcher.submit(1), 0.5) == 10
    assert recorder.calls == [[1]]


async def test_concurrent_items_share_batches_of_at_most_ten() -> None:
    recorder = Recorder(delay=0.02)
    batcher: Batcher[int, int] = Batcher(recorder.flush, max_items=10, max_in_flight=1)
    results = await asyncio.gather(*(batcher.submit(i) for i in range(35)))
    assert results == [i * 10 for i in range(35)]
    assert all(len(call) <= 10 for call in recorder.calls)
    assert len(recorder.calls) <= 5
    assert sorted(i for call in recorder.calls for i in call) == list(range(35))


async def test_per_item_failure_reaches_only_that_caller() -> None:
    recorder = Recorder(delay=0.01)
    batcher: Batcher[int, int] = Batcher(recorder.flush, max_in_flight=1)
    results = await asyncio.gather(
        batcher.submit(1), batcher.submit(-2), batcher.submit(3), return_exceptions=True
    )
    assert results[0] == 10 and results[2] == 30
    assert isinstance(results[1], ValueError)


async def test_whole_batch_failure_reaches_every_caller() -> None:
    async def broken(items: Sequence[int]) -> list[int | BaseException]:
        raise ConnectionError("down")

    batcher: Batcher[int, int] = Batcher(broken)
    results = await asyncio.gather(*(batcher.submit(i) for i in range(3)), return_exceptions=True)
    assert all(isinstance(r, ConnectionError) for r in results)


async def test_byte_limit_splits_batches() -> None:
    recorder = Recorder(delay=0.01)
    batcher: Batcher[int, int] = Batcher(
        recorder.flush, max_items=10, max_bytes=100, size_of=lambda i: 40, max_in_flight=1
    )
    await asyncio.gather(*(batcher.submit(i) for i in range(6)))
    assert all(len(call) <= 2 for call in recorder.calls)


async def test_oversized_item_is_refused() -> None:
    batcher: Batcher[int, int] = Batcher(Recorder().flush, max_bytes=10, size_of=lambda i: 11)
    with pytest.raises(ValueError, match="exceeds"):
        await batcher.submit(1)


async def test_aclose_waits_for_pending_items() -> None:
    recorder = Recorder(delay=0.05)
    batcher: Batcher[int, int] = Batcher(recorder.flush, max_in_flight=1)
    tasks = [asyncio.create_task(batcher.submit(i)) for i in range(15)]
    await asyncio.sleep(0)
    await batcher.aclose()
    assert all(task.done() for task in tasks)
    with pytest.raises(RuntimeError):
        await batcher.submit(99)


async def test_a_withdrawn_ticket_is_never_sent() -> None:
    recorder = Recorder(delay=0.05)
    batcher: Batcher[int, int] = Batcher(recorder.flush, max_in_flight=1)
    first = batcher.enqueue(1)
    await asyncio.sleep(0)  # 1 leaves at once and occupies the only runner
    waiting = batcher.enqueue(2)
    await asyncio.sleep(0)
    assert first.sent and not waiting.sent
    assert waiting.withdraw() is True
    assert await first.future == 10
    await batcher.aclose()
    assert recorder.calls == [[1]]


async def test_a_ticket_already_sent_cannot_be_withdrawn() -> None:
    recorder = Recorder(delay=0.05)
    batcher: Batcher[int, int] = Batcher(recorder.flush)
    ticket = batcher.enqueue(3)
    await asyncio.sleep(0.01)
    assert ticket.withdraw() is False
    assert await ticket.future == 30


async def test_a_cancelled_submit_is_still_sent() -> None:
    # The worker's deletes rely on this: a delete whose waiter was cancelled at the end
    # of a shutdown must still happen, or the sent message is delivered again.
    recorder = Recorder(delay=0.05)
    batcher: Batcher[int, int] = Batcher(recorder.flush, max_in_flight=1)
    busy = asyncio.ensure_future(batcher.submit(1))
    await asyncio.sleep(0.01)
    waiter = asyncio.ensure_future(batcher.submit(2))
    await asyncio.sleep(0.01)
    waiter.cancel()
    assert await busy == 10
    await batcher.aclose()
    assert recorder.calls == [[1], [2]]


async def test_an_item_queued_as_the_last_runner_finishes_is_still_sent() -> None:
    """The runner that finds the queue empty must not look busy to the next enqueue."""
    loop = asyncio.get_running_loop()
    late: list[Ticket[int, int]] = []

    async def flush(items: Sequence[int]) -> list[int | BaseException]:
        if not late:
            # Another request's item arrives just as this runner sees nothing left.
            loop.call_soon(lambda: late.append(batcher.enqueue(2)))
        return list(items)

    batcher: Batcher[int, int] = Batcher(flush, max_items=100)
    assert await batcher.submit(1) == 1
    await asyncio.sleep(0)
    assert await asyncio.wait_for(late[0].future, 2) == 2


async def test_a_lingering_batch_leaves_as_soon_as_it_is_full() -> None:
    recorder = Recorder()
    batcher: Batcher[int, int] = Batcher(recorder.flush, max_items=10, linger=600)
    results = await asyncio.wait_for(asyncio.gather(*(batcher.submit(i) for i in range(10))), 5)
    assert results == [i * 10 for i in range(10)]
    assert recorder.calls == [list(range(10))]


async def test_hurry_sends_a_lingering_batch_at_once() -> None:
    recorder = Recorder()
    batcher: Batcher[int, int] = Batcher(recorder.flush, max_items=10, linger=600)
    waiting = asyncio.ensure_future(batcher.submit(1))
    await asyncio.sleep(0.05)
    assert recorder.calls == []  # waiting for company
    batcher.hurry()
    assert await asyncio.wait_for(waiting, 5) == 10
    assert await asyncio.wait_for(batcher.submit(2), 5) == 20  # and later ones do not wait
    assert recorder.calls == [[1], [2]]


async def test_a_runner_that_finds_its_full_batch_taken_lingers_again() -> None:
    # One lingers; ten more fill its batch and overflow it: a second runner starts and
    # one of the two takes ten. The eleventh waits for the company that comes later
    # instead of leaving alone.
    recorder = Recorder(delay=0.01)
    batcher: Batcher[int, int] = Batcher(recorder.flush, max_items=10, linger=5)
    first = [asyncio.ensure_future(batcher.submit(0))]
    await asyncio.sleep(0.05)
    first += [asyncio.ensure_future(batcher.submit(i)) for i in range(1, 11)]
    await asyncio.sleep(0.1)
    later = [asyncio.ensure_future(batcher.submit(i)) for i in range(11, 20)]
    await asyncio.wait_for(asyncio.gather(*first, *later), 4)
    assert recorder.calls == [list(range(10)), list(range(10, 20))]


async def test_a_partial_batch_leaves_when_its_oldest_item_has_lingered() -> None:
    recorder = Recorder()
    loop = asyncio.get_running_loop()
    batcher: Batcher[int, int] = Batcher(recorder.flush, max_items=10, linger=0.6)
    started = loop.time()
    oldest = asyncio.ensure_future(batcher.submit(1))
    await asyncio.sleep(0.4)
    newer = asyncio.ensure_future(batcher.submit(2))
    await asyncio.wait_for(asyncio.gather(oldest, newer), 5)
    assert recorder.calls == [[1, 2]]
    # Held for the oldest item's linger (0.6 s), not restarted by the newer one (1.0 s).
    assert 0.6 <= loop.time() - started < 0.9


async def test_with_company_a_lone_item_still_leaves_at_once() -> None:
    recorder = Recorder()
    batcher: Batcher[int, int] = Batcher(recorder.flush, company=600, company_gap=600)
    assert await asyncio.wait_for(batcher.submit(1), 1) == 10
    assert recorder.calls == [[1]]


async def test_with_company_a_trickle_leaves_one_by_one() -> None:
    recorder = Recorder()
    batcher: Batcher[int, int] = Batcher(recorder.flush, company=600, company_gap=0.05)
    for i in range(3):
        assert await asyncio.wait_for(batcher.submit(i), 1) == i * 10
        await asyncio.sleep(0.2)  # further apart than the gap: no burst
    assert recorder.calls == [[0], [1], [2]]


async def test_items_already_arriving_when_a_lone_one_is_queued_join_its_batch() -> None:
    # Requests read in the same turns of the event loop reach the batcher before the
    # first one's batch leaves, and it waits for the gap after the last of them.
    recorder = Recorder()
    batcher: Batcher[int, int] = Batcher(recorder.flush, company=600, company_gap=0.3)
    loop = asyncio.get_running_loop()
    started = loop.time()
    first = batcher.enqueue(0)
    await asyncio.sleep(0)
    rest = [batcher.enqueue(i) for i in range(1, 5)]
    results = await asyncio.wait_for(asyncio.gather(first.future, *(t.future for t in rest)), 5)
    assert results == [0, 10, 20, 30, 40]
    assert recorder.calls == [[0, 1, 2, 3, 4]]
    assert loop.time() - started >= 0.3


async def test_a_burst_fills_batches_while_the_first_item_leaves_at_once() -> None:
    recorder = Recorder(delay=0.01)
    batcher: Batcher[int, int] = Batcher(recorder.flush, company=600, company_gap=0.5)
    first = asyncio.ensure_future(batcher.submit(0))
    await asyncio.sleep(0.2)
    assert first.done(), "the burst's first request did not wait"
    burst = []
    for i in range(1, 26):
        burst.append(asyncio.ensure_future(batcher.submit(i)))
        await asyncio.sleep(0.001)
    assert await asyncio.wait_for(asyncio.gather(*burst), 5) == [i * 10 for i in range(1, 26)]
    # The burst's first item finds nothing unanswered and leaves alone; then full batches
    # leave at once, and the last partial one once the gap passed without company.
    assert recorder.calls == [
        [0],
        [1],
        list(range(2, 12)),
        list(range(12, 22)),
        list(range(22, 26)),
    ]


async def test_a_burst_batch_leaves_once_its_oldest_item_has_waited_company() -> None:
    recorder = Recorder(delay=0.05)
    batcher: Batcher[int, int] = Batcher(recorder.flush, company=0.3, company_gap=5)
    tickets = [batcher.enqueue(0)]  # leaves at once; the next come while it is in flight
    await asyncio.sleep(0.01)
    for i in range(1, 9):  # one every 0.1 s for 0.8 s: close, but slower than the cap
        tickets.append(batcher.enqueue(i))
        await asyncio.sleep(0.1)
    await asyncio.wait_for(asyncio.gather(*(t.future for t in tickets)), 5)
    assert recorder.calls[0] == [0]
    assert 1 < len(recorder.calls[1]) < 8, "left before the burst's end, not when full"
    assert sorted(i for call in recorder.calls[1:] for i in call) == list(range(1, 9))


async def test_closing_sends_a_burst_batch_that_is_waiting_for_company() -> None:
    recorder = Recorder(delay=0.2)
    batcher: Batcher[int, int] = Batcher(recorder.flush, company=600, company_gap=600)
    first = batcher.enqueue(0)
    await asyncio.sleep(0.01)
    waiting = batcher.enqueue(1)  # close after 0, which is in flight: it waits for more
    await asyncio.sleep(0.05)
    assert not waiting.sent
    await asyncio.wait_for(batcher.aclose(), 5)
    assert await waiting.future == 10 and await first.future == 0
    assert recorder.calls == [[0], [1]]


async def test_with_company_one_caller_sending_one_after_another_never_waits() -> None:
    # A client that sends its next request as soon as the last was answered: however
    # close together, nothing else can join, so nothing waits (the gap alone would say
    # burst and hold each one for the whole ``company``).
    recorder = Recorder(delay=0.005)
    batcher: Batcher[int, int] = Batcher(recorder.flush, company=600, company_gap=600)
    for i in range(5):
        assert await asyncio.wait_for(batcher.submit(i), 2) == i * 10
    assert recorder.calls == [[0], [1], [2], [3], [4]]
