"""The generic consumer against an in-memory queue: what it asks of SQS for each outcome."""

from __future__ import annotations

import asyncio
import functools
import time
from collections.abc import Awaitable, Callable
from dataclasses import dataclass, field

import pytest
from prometheus_client import REGISTRY
from structlog.testing import capture_logs

from limbo_shared.queue import QueueUnavailable, ReceivedMessage
from limbo_shared.worker import consumer as consumer_module
from limbo_shared.worker.circuit import Circuit
from limbo_shared.worker.consumer import (
    Consumer,
    DeadLetter,
    Defer,
    Done,
    Outcome,
    Retry,
    Unavailable,
    max_receive_count,
)
from limbo_shared.worker.moved import attempt_of

from .conftest import Running, consumer_settings
from .fakes import FakeDeadLetters, FakeQueue, wait_until

Start = Callable[[Consumer], Running]


@dataclass
class ScriptedHandler:
    """Answers ``answer(message)`` after ``work`` seconds; counts what runs at once."""

    answer: Callable[[ReceivedMessage], Outcome] = lambda message: Done("sent")
    work: float = 0.0
    name: str = "scripted"
    seen: list[ReceivedMessage] = field(default_factory=list)
    running: int = 0
    most_running: int = 0
    finished: int = 0
    closed: bool = False
    slow: Callable[[ReceivedMessage], Awaitable[None]] | None = None

    async def handle(self, message: ReceivedMessage) -> Outcome:
        self.seen.append(message)
        self.running += 1
        self.most_running = max(self.most_running, self.running)
        try:
            if self.slow is not None:
                await self.slow(message)
            elif self.work:
                await asyncio.sleep(self.work)
            return self.answer(message)
        finally:
            self.running -= 1
            self.finished += 1

    async def aclose(self) -> None:
        self.closed = True


def consumer(
    handler: ScriptedHandler,
    queue: FakeQueue,
    dead: FakeDeadLetters | None = None,
    **settings: object,
) -> Consumer:
    return Consumer(handler, consumer_settings(**settings), queue, dead)


async def test_deletes_of_concurrent_messages_share_batch_calls(running: Start) -> None:
    queue = FakeQueue(call_seconds=0.05)
    for i in range(30):
        queue.put(f"m{i}")
    run = running(consumer(ScriptedHandler(work=0.05), queue, FakeDeadLetters()))
    await wait_until(lambda: queue.depth == 0)
    await run.stop()
    deletes = queue.calls_of("delete_batch")
    assert max(len(batch) for batch in deletes) > 1
    assert sum(len(batch) for batch in deletes) == 30
    # One call per message would be 30; batches of up to ten make a handful.
    assert len(deletes) < 20, f"{len(deletes)} DeleteMessageBatch calls for 30 messages"


async def test_deletes_at_a_trickle_wait_for_company(running: Start) -> None:
    queue = FakeQueue()
    handler = ScriptedHandler()
    run = running(consumer(handler, queue, FakeDeadLetters()))
    for i in range(1, 11):
        queue.put(f"m{i}")
        await wait_until(functools.partial(lambda n: handler.finished == n, i))  # alone
    await wait_until(lambda: queue.depth == 0)
    await run.stop()
    deletes = queue.calls_of("delete_batch")
    # Sent as they came, ten deletes would be ten calls.
    assert len(deletes) <= 2, deletes
    assert sum(len(batch) for batch in deletes) == 10


async def test_a_lingering_delete_frees_its_slot_and_stopping_sends_it_at_once(
    running: Start, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setattr(consumer_module, "DELETE_LINGER", 600.0)
    queue = FakeQueue()
    for i in range(3):
        queue.put(f"m{i}")
    handler = ScriptedHandler()
    run = running(
        consumer(handler, queue, FakeDeadLetters(), concurrency=1, visibility_timeout=43200)
    )
    # One slot: the next message is received only once the last one's slot is free.
    await wait_until(lambda: handler.finished == 3)
    assert queue.deleted() == []
    await run.stop(timeout=10)
    assert queue.calls_of("delete_batch") == [[m.receipt_handle for m in handler.seen]]
    assert queue.depth == 0


async def test_an_idle_consumer_keeps_one_long_poll_open(running: Start) -> None:
    queue = FakeQueue()
    handler = ScriptedHandler()
    # 64 would allow seven polls of ten; at rest one is open, so the first message
    # after the quiet spell is received by the poll already waiting.
    run = running(consumer(handler, queue, FakeDeadLetters(), concurrency=64))
    await asyncio.sleep(2.5)  # wait_time_seconds=1: a couple of empty receives each
    idle_receives = len(queue.calls_of("receive"))
    queue.put("after the quiet spell")
    await wait_until(lambda: handler.finished == 1)
    await run.stop()
    assert 1 <= idle_receives <= 4, f"{idle_receives} receives in 2.5 s at rest"


async def test_a_backlog_opens_more_polls(running: Start) -> None:
    queue = FakeQueue(call_seconds=0.05)
    for i in range(200):
        queue.put(f"m{i}")
    handler = ScriptedHandler(work=0.2)
    run = running(consumer(handler, queue, FakeDeadLetters(), concurrency=64))
    await wait_until(lambda: handler.most_running > 40)
    await run.stop()


async def test_a_retry_makes_the_message_visible_after_its_delay_rounded_up(
    running: Start,
) -> None:
    queue = FakeQueue()
    queue.put("m")
    handler = ScriptedHandler(answer=lambda m: Retry("provider answered 500", 1.2))
    run = running(consumer(handler, queue, FakeDeadLetters(), retry_moves=False))
    await wait_until(lambda: queue.visibility_changes())
    await run.stop()
    [(_, seconds)] = queue.visibility_changes()
    assert seconds == 2  # ceil: never sooner than asked
    assert queue.depth == 1 and queue.deleted() == []


@pytest.mark.parametrize("moves", [True, False], ids=["moved", "in-place"])
async def test_a_retry_at_the_last_attempt_is_dead_lettered_with_the_reason(
    running: Start, moves: bool
) -> None:
    queue, dead = FakeQueue(), FakeDeadLetters()
    queue.put("m")
    handler = ScriptedHandler(answer=lambda m: Retry("provider answered 500", 0))
    run = running(consumer(handler, queue, dead, max_attempts=3, retry_moves=moves))
    await wait_until(lambda: queue.depth == 0)
    await run.stop()
    assert [attempt_of(m) for m in handler.seen] == [1, 2, 3]
    assert dead.reasons() == ["gave up after 3 attempts: provider answered 500"]


async def test_max_attempts_is_the_queue_redrive_count_when_it_has_one() -> None:
    assert await max_receive_count(FakeQueue(redrive_max=7), 5) == 7
    assert await max_receive_count(FakeQueue(), 5) == 5


async def test_a_dead_letter_is_sent_before_the_message_is_deleted(running: Start) -> None:
    queue, dead = FakeQueue(), FakeDeadLetters()
    message_id = queue.put("m", {"traceparent": {"DataType": "String", "StringValue": "00-x"}})
    handler = ScriptedHandler(answer=lambda m: DeadLetter("rejected by x: no", "rejected"))
    run = running(consumer(handler, queue, dead))
    await wait_until(lambda: queue.depth == 0)
    await run.stop()
    [letter] = dead.sent
    assert letter.body == "m"
    assert letter.attributes["limbo-reason"]["StringValue"] == "rejected by x: no"
    assert letter.attributes["limbo-source-message-id"]["StringValue"] == message_id
    assert "traceparent" in letter.attributes


async def test_a_failing_dead_letter_send_is_tried_again(running: Start) -> None:
    queue, dead = FakeQueue(), FakeDeadLetters(failures=2)
    queue.put("m")
    run = running(consumer(ScriptedHandler(answer=lambda m: DeadLetter("bad", "x")), queue, dead))
    await wait_until(lambda: queue.depth == 0)
    await run.stop()
    assert dead.attempts == 3 and len(dead.sent) == 1


async def test_a_dead_letter_queue_that_keeps_failing_leaves_the_message_on_the_queue(
    running: Start,
) -> None:
    queue, dead = FakeQueue(), FakeDeadLetters(failures=1000)
    queue.put("m")
    run = running(consumer(ScriptedHandler(answer=lambda m: DeadLetter("bad", "x")), queue, dead))
    started = time.monotonic()
    await wait_until(lambda: dead.attempts >= 3)
    await asyncio.sleep(0.1)
    await run.stop()
    assert dead.attempts == 3, "the retries are bounded"
    assert time.monotonic() - started < 5
    assert queue.depth == 1 and queue.deleted() == []


async def test_without_a_dead_letter_queue_a_dead_letter_is_deleted(running: Start) -> None:
    queue = FakeQueue()
    queue.put("m")
    run = running(consumer(ScriptedHandler(answer=lambda m: DeadLetter("bad", "x")), queue))
    await wait_until(lambda: queue.depth == 0)
    await run.stop()


async def test_a_deferred_message_is_delayed_and_not_counted_as_a_failure(
    running: Start,
) -> None:
    queue = FakeQueue()
    queue.put("m")
    run = running(consumer(ScriptedHandler(answer=lambda m: Defer(3.5)), queue, FakeDeadLetters()))
    await wait_until(lambda: queue.visibility_changes())
    await run.stop()
    assert [seconds for _, seconds in queue.visibility_changes()] == [4]
    assert queue.depth == 1


async def test_a_handler_that_raises_is_retried_and_its_error_text_is_not_kept(
    running: Start,
) -> None:
    queue, dead = FakeQueue(), FakeDeadLetters()
    queue.put("m")

    def explode(message: ReceivedMessage) -> Outcome:
        raise RuntimeError("Authorization: Basic c2VjcmV0")

    run = running(consumer(ScriptedHandler(answer=explode), queue, dead, max_attempts=1))
    await wait_until(lambda: dead.sent)
    await run.stop()
    assert dead.reasons() == ["gave up after 1 attempts: scripted handler raised RuntimeError"]


async def test_no_more_messages_are_handled_at_once_than_the_concurrency(
    running: Start,
) -> None:
    queue = FakeQueue()
    for i in range(12):
        queue.put(f"m{i}")
    handler = ScriptedHandler(work=0.05)
    run = running(consumer(handler, queue, FakeDeadLetters(), concurrency=3))
    await wait_until(lambda: queue.depth == 0)
    await run.stop()
    assert handler.most_running == 3
    assert max(queue.calls_of("receive")) == 3


async def test_a_slow_handler_keeps_its_message_invisible(running: Start) -> None:
    queue = FakeQueue()
    queue.put("m")
    # VISIBILITY_TIMEOUT 5 s: extended every 5/3 s while the handler works.
    run = running(
        consumer(ScriptedHandler(work=2.5), queue, FakeDeadLetters(), visibility_timeout=5)
    )
    await wait_until(lambda: queue.depth == 0)
    await run.stop()
    assert (queue.deleted()[0], 5) in queue.visibility_changes()


async def test_stopping_lets_running_handlers_finish_and_releases_the_rest(
    running: Start,
) -> None:
    queue = FakeQueue()
    for i in range(2):
        queue.put(f"m{i}")
    stuck = asyncio.Event()

    async def slow(message: ReceivedMessage) -> None:
        if message.body == "m0":
            await asyncio.sleep(0.3)  # finishes within the grace
        else:
            await stuck.wait()  # never does

    handler = ScriptedHandler(slow=slow)
    run = running(consumer(handler, queue, FakeDeadLetters(), shutdown_grace=2))
    await wait_until(lambda: len(handler.seen) == 2)
    started = time.monotonic()
    await run.stop()
    assert time.monotonic() - started < 2.5
    assert [m.body for m in queue.stored.values()] == ["m1"]
    [m1] = queue.stored.values()
    assert (m1.handle, 0) in queue.visibility_changes(), "released, not left to time out"


async def test_an_idle_consumer_stops_at_once_and_releases_what_a_late_poll_brings(
    running: Start,
) -> None:
    queue = FakeQueue()
    run = running(consumer(ScriptedHandler(), queue, FakeDeadLetters(), wait_time_seconds=20))
    await wait_until(lambda: queue.calls_of("receive"))
    stopping = asyncio.ensure_future(run.stop())
    queue.put("late")  # the outstanding long poll finds it while the consumer stops
    started = time.monotonic()
    await stopping
    assert time.monotonic() - started < 1.0
    [late] = queue.stored.values()
    assert (late.handle, 0) in queue.visibility_changes()


class Flaky:
    """A dependency the test switches on and off; its circuit probes it quickly."""

    def __init__(self) -> None:
        self.up = False
        self.circuit = Circuit("store_unavailable", self.probe, first_probe=0.05, max_probe=0.1)

    async def probe(self) -> None:
        if not self.up:
            raise ConnectionError("down")


def paused_gauge(name: str) -> float | None:
    return REGISTRY.get_sample_value(
        "limbo_worker_paused", {"provider": "scripted", "reason": name}
    )


async def test_an_unavailable_dependency_pauses_receiving_and_keeps_the_messages(
    running: Start,
) -> None:
    queue, dead, dependency = FakeQueue(), FakeDeadLetters(), Flaky()
    for i in range(5):
        queue.put(f"m{i}")

    def answer(message: ReceivedMessage) -> Outcome:
        if not dependency.up:
            return Unavailable(dependency.circuit, "status store: ServiceUnavailable")
        return Done("sent")

    handler = ScriptedHandler(answer=answer)
    consumer_ = consumer(handler, queue, dead, concurrency=5)
    with capture_logs() as logs:
        run = running(consumer_)
        await wait_until(lambda: len(handler.seen) == 5)
        receives = len(queue.calls_of("receive"))
        await asyncio.sleep(0.5)
        assert len(queue.calls_of("receive")) == receives, "received while paused"
        assert not consumer_.ready
        assert paused_gauge("store_unavailable") == 1
        assert queue.visibility_changes() == [] and queue.deleted() == []
        dependency.up = True
        await wait_until(lambda: queue.depth == 0)
        assert paused_gauge("store_unavailable") == 0
        await wait_until(lambda: consumer_.ready)
        await run.stop()
    # Handled again where they were held: no receive count spent on the pause.
    assert sorted(m.receive_count for m in handler.seen) == [1] * 10
    assert dead.sent == []
    paused = [line for line in logs if line["event"].startswith("paused")]
    assert len(paused) == 1 and paused[0]["log_level"] == "error"
    assert [line["event"] for line in logs].count("resumed") == 1


async def test_stopping_while_paused_releases_the_held_messages_at_once(
    running: Start,
) -> None:
    queue, dependency = FakeQueue(), Flaky()
    queue.put("m")
    handler = ScriptedHandler(answer=lambda m: Unavailable(dependency.circuit, "down"))
    run = running(consumer(handler, queue, FakeDeadLetters(), shutdown_grace=20))
    await wait_until(lambda: handler.seen)
    started = time.monotonic()
    await run.stop()
    assert time.monotonic() - started < 2
    # Released, not left invisible for VISIBILITY_TIMEOUT (if the consumer's own
    # abandoned long poll picks it up again, that receipt is released too).
    assert [m.body for m in queue.visible()] == ["m"]
    assert all(seconds == 0 for _, seconds in queue.visibility_changes())


# -- retries leave their FIFO group -------------------------------------------------------


def fails_first(message: ReceivedMessage) -> Outcome:
    if message.body == "failing" and attempt_of(message) == 1:
        return Retry("provider answered 500", 30)
    return Done("sent")


@pytest.mark.parametrize("moves", [True, False], ids=["moved", "in-place"])
async def test_a_retry_delays_only_itself(running: Start, moves: bool) -> None:
    queue = FakeQueue(fifo=True)
    queue.put("failing", group="key.0")
    handler = ScriptedHandler(answer=fails_first)
    run = running(consumer(handler, queue, FakeDeadLetters(), retry_moves=moves))
    await wait_until(lambda: handler.finished == 1)
    # Mail of the same key and lane, submitted while the failing one backs off.
    for i in range(5):
        queue.put(f"healthy{i}", group="key.0")
    healthy_sent = lambda: sum(1 for m in handler.seen if m.body.startswith("healthy"))  # noqa: E731
    if moves:
        await wait_until(lambda: healthy_sent() == 5, timeout=3)
        # The failing one waits in a group of its own, due in 30 s, counted once.
        await wait_until(lambda: queue.depth == 1)
        [copy] = queue.stored.values()
        assert copy.group == f"retry.{handler.seen[0].message_id}"
        assert copy.attributes["limbo-attempts"]["StringValue"] == "1"
    else:
        await asyncio.sleep(1.5)
        assert healthy_sent() == 0, "in place, the retry holds its whole group"
    await run.stop()


async def test_a_moved_copy_received_early_is_deferred_until_due_without_an_attempt(
    running: Start,
) -> None:
    queue = FakeQueue(fifo=True)
    due = f"{time.time() + 20:.3f}"
    queue.put(
        "m",
        {
            "limbo-attempts": {"DataType": "Number", "StringValue": "2"},
            "limbo-due": {"DataType": "Number", "StringValue": due},
        },
        group="retry.x",
    )
    handler = ScriptedHandler()
    run = running(consumer(handler, queue, FakeDeadLetters()))
    await wait_until(lambda: queue.visibility_changes())
    await run.stop()
    [(_, seconds)] = queue.visibility_changes()
    assert 19 <= seconds <= 21
    assert handler.seen == [] and queue.depth == 1


async def test_a_retry_whose_copy_cannot_be_sent_waits_in_place(running: Start) -> None:
    queue = FakeQueue()
    queue.put("m")

    async def refuse(message: object) -> str:
        raise QueueUnavailable("SQS send_message failed: ServiceUnavailable: later")

    queue.send = refuse  # type: ignore[method-assign]
    handler = ScriptedHandler(answer=lambda m: Retry("provider answered 500", 3))
    run = running(consumer(handler, queue, FakeDeadLetters()))
    await wait_until(lambda: queue.visibility_changes())
    await run.stop()
    assert [seconds for _, seconds in queue.visibility_changes()] == [3]
    assert queue.deleted() == [] and queue.depth == 1


@pytest.mark.parametrize("moves", [True, False], ids=["moved", "in-place"])
async def test_deferrals_are_not_counted_as_attempts_when_moved(
    running: Start, moves: bool
) -> None:
    queue, dead = FakeQueue(fifo=True), FakeDeadLetters()
    queue.put("m", group="key.0")
    attempts: list[int] = []

    def defer_twice(message: ReceivedMessage) -> Outcome:
        attempts.append(attempt_of(message))
        # The retry is due long after the test: its copy must not come back meanwhile
        # (deletes linger up to a second, so a copy due in one could beat its original's).
        return Defer(0.2) if len(attempts) < 3 else Retry("provider answered 500", 60)

    handler = ScriptedHandler(answer=defer_twice)
    run = running(consumer(handler, queue, dead, max_attempts=2, retry_moves=moves))
    await wait_until(lambda: len(attempts) == 3 and (queue.depth == 1 or dead.sent), timeout=10)
    await run.stop()
    if moves:
        # Two deferrals (a send-rate token not in time, say), then the first real attempt.
        assert attempts == [1, 1, 1] and dead.sent == []
        [copy] = queue.stored.values()
        assert copy.attributes["limbo-attempts"]["StringValue"] == "1"
    else:
        # In place, SQS's receive count takes each deferral for an attempt.
        assert attempts == [1, 2, 3] and len(dead.sent) == 1


class Gate:
    """A gate the test opens and closes (what the routing standby is to the consumer)."""

    def __init__(self, open_: bool) -> None:
        self._closed = asyncio.Event()
        if not open_:
            self._closed.set()

    @property
    def is_closed(self) -> bool:
        return self._closed.is_set()

    async def wait_closed(self) -> None:
        await self._closed.wait()

    def close(self) -> None:
        self._closed.set()


async def test_an_open_gate_holds_receiving_without_being_a_pause(running: Start) -> None:
    queue, gate = FakeQueue(), Gate(open_=True)
    queue.put("m")
    handler = ScriptedHandler(name="gated")
    consumer_ = consumer(handler, queue)
    consumer_.hold_while(gate)
    running(consumer_)
    await asyncio.sleep(0.5)
    assert queue.calls_of("receive") == [] and handler.seen == []
    # Standing by is the worker doing its job: ready, and no paused series.
    assert consumer_.ready and consumer_.paused == []
    assert REGISTRY.get_sample_value("limbo_worker_paused", {"provider": "gated"}) is None
    gate.close()
    await wait_until(lambda: queue.depth == 0)
    assert [m.body for m in handler.seen] == ["m"]


async def test_an_unavailable_dependency_with_hand_back_releases_the_message_at_once(
    running: Start,
) -> None:
    queue, dependency = FakeQueue(), Flaky()
    queue.put("m")
    handler = ScriptedHandler(
        answer=lambda m: Unavailable(dependency.circuit, "ses: paused", hand_back=True)
    )
    consumer_ = consumer(handler, queue, FakeDeadLetters(), wait_time_seconds=1)
    running(consumer_)
    await wait_until(lambda: queue.visibility_changes())
    assert not consumer_.ready
    await asyncio.sleep(1.2)  # a long poll begun before the pause has ended
    receives = len(queue.calls_of("receive"))
    await asyncio.sleep(0.3)
    assert len(queue.calls_of("receive")) == receives, "received while paused"
    # Visible for another worker (a fallback provider); what a poll begun before the
    # pause brought back was released without being handled again.
    assert [m.body for m in queue.visible()] == ["m"]
    assert len(handler.seen) == 1
    assert {seconds for _, seconds in queue.visibility_changes()} == {0}
