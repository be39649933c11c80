"""A generic SQS consumer: receive, hand each message to a handler, settle its outcome.

Long polls of ten messages (one at rest, more while batches come back full, up to as
many as ``CONCURRENCY`` needs: see :mod:`.polling`) feed one task per message, which
runs the handler inside the ``process`` span and the bound log context. The handler
answers an :data:`Outcome`; the consumer settles it: deletes in batches, visibility
changes in batches, dead-letters with the reason. While a message is held its visibility
is extended, so a slow handler does not cause a second delivery. A handler that meets a
dependency down (not the message's fault) answers :class:`Unavailable`: the consumer
pauses (receives nothing, ``/ready`` says 503), holds the message invisible and hands it
to the handler again once the dependency's circuit closes, so a pause costs the message
no receive count (unless another worker can send it meanwhile:
``Unavailable(hand_back=True)`` releases it at once). A gate
(:meth:`Consumer.hold_while`) stops receiving the same way without being a pause: a
routing fallback standing by. On SIGTERM it drains (see :mod:`.drain`).

The consumer knows nothing about email; :mod:`.mail` is the sending workers' handler.
"""

from __future__ import annotations

import asyncio
import contextlib
import json
import random
import time
from collections.abc import Awaitable, Sequence
from dataclasses import dataclass, field
from typing import TYPE_CHECKING, Protocol

from opentelemetry import trace
from opentelemetry.trace import Link, SpanKind, Status, StatusCode

if TYPE_CHECKING:
    from types_boto3_sqs.literals import QueueAttributeNameType

from ..batching import Batcher
from ..logs import bind_message, get_logger
from ..propagation import extract_context
from ..queue import OutgoingMessage, QueueUnavailable, ReceivedMessage
from .backoff import retry_delay, visibility_seconds
from .circuit import Circuit
from .dead_letter import dead_letter_message, sqs_text
from .drain import plan_drain
from .metrics import WorkerMetrics
from .moved import attempt_of, due_in, moved_copy
from .polling import PollPolicy
from .settings import ConsumerSettings

if TYPE_CHECKING:
    from types_boto3_sqs.literals import QueueAttributeNameType

__all__ = [
    "RECEIVE_BATCH",
    "Consumer",
    "DeadLetter",
    "DeadLetterQueue",
    "Defer",
    "Done",
    "Gate",
    "Handler",
    "Outcome",
    "Retry",
    "SourceQueue",
    "Unavailable",
    "max_receive_count",
]

log = get_logger("limbo.worker")
tracer = trace.get_tracer("limbo.worker")

RECEIVE_BATCH = 10
# A dead-letter send that fails is tried this often in all, waiting 0.5 s, then 1 s.
DEAD_LETTER_ATTEMPTS = 3
# Longest a delete waits for nine others to share its DeleteMessageBatch: nobody waits
# for a delete (the message's slot is freed first), so at a trickle ten emails cost one
# delete, not ten. No heartbeat covers a message once handled, so the wait stays a
# tenth of the visibility timeout at most.
DELETE_LINGER = 1.0


# -- what a handler answers ---------------------------------------------------------------


@dataclass(frozen=True)
class Done:
    """Handled: delete it. ``outcome`` labels the metric ("sent", "duplicate", ...)."""

    outcome: str = "done"


@dataclass(frozen=True)
class Retry:
    """Failed, worth another attempt: visible again after ``delay`` seconds (rounded up).

    At the queue's ``maxReceiveCount`` (or ``MAX_ATTEMPTS``) it is dead-lettered instead,
    with the reason.
    """

    reason: str
    delay: float


@dataclass(frozen=True)
class DeadLetter:
    """Never going to work: copy it to the dead-letter queue with the reason, then delete."""

    reason: str
    outcome: str = "dead_lettered"


@dataclass(frozen=True)
class Defer:
    """Not attempted (someone else holds it): visible again later, not a failure."""

    delay: float


@dataclass(frozen=True)
class Unavailable:
    """A dependency is down, not the message: pause on ``circuit`` and keep the message.

    The consumer holds it invisible and calls the handler again once the circuit has
    closed; ``reason`` is logged once per pause, so it must be limbo's own words.
    """

    circuit: Circuit
    reason: str
    # Another worker (a fallback provider) can send it now: release it rather than hold it.
    hand_back: bool = False


Outcome = Done | Retry | DeadLetter | Defer | Unavailable


class Handler(Protocol):
    #: Low-cardinality label for metrics, logs and spans.
    name: str

    async def handle(self, message: ReceivedMessage) -> Outcome: ...

    async def aclose(self) -> None: ...


class Gate(Protocol):
    """Receiving waits while a gate is open, as while a circuit is (a Circuit is one)."""

    @property
    def is_closed(self) -> bool: ...

    async def wait_closed(self) -> None: ...


# -- what the consumer needs of its queues --------------------------------------------------


class SourceQueue(Protocol):
    name: str
    url: str

    async def receive(
        self, *, max_messages: int, wait_seconds: int, visibility_timeout: int | None = None
    ) -> list[ReceivedMessage]: ...

    async def delete_batch(self, receipt_handles: Sequence[str]) -> list[BaseException | None]: ...

    async def change_visibility_batch(
        self, changes: Sequence[tuple[str, int]]
    ) -> list[BaseException | None]: ...

    async def attributes(self, *names: QueueAttributeNameType) -> dict[str, str]: ...

    async def send(self, message: OutgoingMessage) -> str: ...


class DeadLetterQueue(Protocol):
    async def send(self, message: OutgoingMessage) -> str: ...


async def max_receive_count(queue: SourceQueue, fallback: int) -> int:
    """The queue's redrive ``maxReceiveCount``, so limbo dead-letters (with a reason) at
    the attempt where SQS would move the message anyway (without one)."""
    try:
        attributes = await queue.attributes("RedrivePolicy")
    except QueueUnavailable as error:
        log.warning("redrive policy unknown, using MAX_ATTEMPTS", error=str(error))
        return fallback
    policy = attributes.get("RedrivePolicy")
    if not policy:
        return fallback
    try:
        return max(1, int(json.loads(policy)["maxReceiveCount"]))
    except (ValueError, KeyError, TypeError):
        log.warning("redrive policy unreadable, using MAX_ATTEMPTS")
        return fallback


@dataclass
class _Held:
    message: ReceivedMessage
    extended_at: float = field(default_factory=time.monotonic)


class Consumer:
    def __init__(
        self,
        handler: Handler,
        settings: ConsumerSettings,
        queue: SourceQueue,
        dead_letters: DeadLetterQueue | None,
        metrics: WorkerMetrics | None = None,
        *,
        max_attempts: int | None = None,
    ) -> None:
        self.handler = handler
        self.settings = settings
        self.queue = queue
        self.dead_letters = dead_letters
        self.metrics = metrics or WorkerMetrics(handler.name)
        self.max_attempts = max_attempts or settings.max_attempts
        self._queue_answers = False
        self._held: dict[str, _Held] = {}
        self._reserved = 0
        self._batch = min(RECEIVE_BATCH, settings.concurrency)
        self._polls = PollPolicy(max(1, -(-settings.concurrency // RECEIVE_BATCH)), self._batch)
        self._capacity = asyncio.Condition()
        self._stopping = asyncio.Event()
        self._tasks: set[asyncio.Task[None]] = set()
        self._circuits: dict[str, Circuit] = {}
        self._gates: list[Gate] = []
        # Circuits whose last Unavailable handed its message back (another worker sends).
        self._handing_back: set[str] = set()
        self._outstanding: set[asyncio.Task[list[ReceivedMessage]]] = set()
        self._late_releases: set[asyncio.Task[object]] = set()
        self._deleter: Batcher[str, None] = Batcher(
            queue.delete_batch,
            max_items=10,
            max_in_flight=4,
            linger=min(DELETE_LINGER, settings.visibility_timeout / 10),
        )
        self._visibility: Batcher[tuple[str, int], None] = Batcher(
            queue.change_visibility_batch, max_items=10, max_in_flight=2
        )

    # -- state ------------------------------------------------------------------------------

    @property
    def stopping(self) -> bool:
        return self._stopping.is_set()

    @property
    def paused(self) -> list[Circuit]:
        """The circuits that are open: while any is, nothing is received."""
        return [c for c in self._circuits.values() if not c.is_closed]

    def hold_while(self, gate: Gate) -> None:
        """Receive nothing while ``gate`` is open. Not a pause: ``ready`` and the paused
        metric are unchanged (a fallback standing by is doing its job)."""
        self._gates.append(gate)

    @property
    def _waits(self) -> list[Gate]:
        return [*self.paused, *(gate for gate in self._gates if not gate.is_closed)]

    @property
    def ready(self) -> bool:
        """The queue answered the last receive (or a gate holds receiving, so there is
        nothing to ask it), no dependency is down, not stopping."""
        held_by_gate = any(not gate.is_closed for gate in self._gates)
        return (self._queue_answers or held_by_gate) and not self.stopping and not self.paused

    @property
    def held(self) -> int:
        return len(self._held)

    def stop(self) -> None:
        """Begin a graceful drain (SIGTERM): receive nothing more, finish what is in hand."""
        self._stopping.set()

    # -- the loop ---------------------------------------------------------------------------

    async def run(self) -> None:
        receivers = self._polls.most
        pollers = [
            asyncio.create_task(self._poll(index), name=f"poll-{index}")
            for index in range(receivers)
        ]
        heartbeat = asyncio.create_task(self._heartbeat(), name="heartbeat")
        log.info(
            "worker started",
            queue=self.queue.name,
            provider=self.handler.name,
            receivers=receivers,
            concurrency=self.settings.concurrency,
            max_attempts=self.max_attempts,
        )
        await self._stopping.wait()
        await self._drain(pollers)
        heartbeat.cancel()
        await asyncio.gather(heartbeat, return_exceptions=True)

    async def _drain(self, pollers: list[asyncio.Task[None]]) -> None:
        loop = asyncio.get_running_loop()
        started = loop.time()
        plan = plan_drain(self.settings.shutdown_grace)
        log.info("draining", in_flight=len(self._held), grace=self.settings.shutdown_grace)
        # Deletes due now leave now: a message not deleted by exit is delivered again.
        self._deleter.hurry()
        async with self._capacity:
            self._capacity.notify_all()
        if self._tasks:
            await asyncio.wait(set(self._tasks), timeout=started + plan.finish_by - loop.time())
        for task in list(self._tasks):
            task.cancel()
        if self._tasks:
            await asyncio.wait(
                set(self._tasks), timeout=max(0.1, started + plan.settle_by - loop.time())
            )
        # Pollers return as soon as stopping is set; their waiting receives are abandoned.
        await asyncio.wait(pollers, timeout=1.0)
        for poller in pollers:
            poller.cancel()
        if self._outstanding:
            await asyncio.wait(set(self._outstanding), timeout=plan.poll_patience)
        unfinished = sum(1 for task in self._outstanding if not task.done())
        await self._deleter.aclose()
        await self._visibility.aclose()
        if self._late_releases:
            await asyncio.wait(
                set(self._late_releases), timeout=max(0.1, started + plan.settle_by - loop.time())
            )
        for circuit in self._circuits.values():
            await circuit.aclose()
        log.info("drained", unfinished_receives=unfinished)

    # -- receiving --------------------------------------------------------------------------

    async def _poll(self, index: int) -> None:
        backoff = 0.5
        while await self._my_turn(index) and await self._room_to_receive():
            started = time.time_ns()
            asked = time.monotonic()
            try:
                messages = await self._receive()
            except QueueUnavailable as error:
                self._queue_answers = False
                self.metrics.queue_error("receive")
                log.warning("receive failed, backing off", error=str(error), backoff=backoff)
                await self._unreserve()
                await self._sleep_unless_stopping(backoff * random.uniform(0.5, 1.0))
                backoff = min(backoff * 2, 20.0)
                continue
            if messages is None:  # stopping: the receive was abandoned
                await self._unreserve()
                return
            self._queue_answers = True
            backoff = 0.5
            took = time.monotonic() - asked
            self._polls.received(len(messages), took)
            for message in messages:
                self._held[message.receipt_handle] = _Held(message)
            await self._unreserve()
            if not messages:
                continue
            self.metrics.received.inc(len(messages))
            self.metrics.in_flight.set(len(self._held))
            receive_span = tracer.start_span(
                f"receive {self.queue.name}",
                kind=SpanKind.CLIENT,
                start_time=started,
                attributes={
                    "messaging.system": "aws_sqs",
                    "messaging.operation.name": "receive",
                    "messaging.operation.type": "receive",
                    "messaging.destination.name": self.queue.name,
                    "messaging.batch.message_count": len(messages),
                    "aws.sqs.queue.url": self.queue.url,
                },
            )
            receive_span.end()
            if self.stopping or self._hands_back():
                # Received while draining, or by a poll begun before a pause that hands
                # mail to another worker: hand back at once rather than start new work.
                await self._release([m.receipt_handle for m in messages])
                for message in messages:
                    self._held.pop(message.receipt_handle, None)
                if self.stopping:
                    return
                continue
            for message in messages:
                task = asyncio.create_task(self._handle(message, receive_span.get_span_context()))
                self._tasks.add(task)
                task.add_done_callback(self._tasks.discard)
            pause = self._polls.pause_after(len(messages), took, in_hand=len(self._held))
            if pause:
                await self._sleep_unless_stopping(pause)

    async def _my_turn(self, index: int) -> bool:
        """Wait until the poll policy wants this poller open; False: stopping."""
        if not self._polls.may_poll(index):
            await self._first(self._stopping.wait(), self._polls.wait_turn(index))
        return not self.stopping

    async def _room_to_receive(self) -> bool:
        """Wait until no circuit or gate is open and a batch fits; reserve it. False: stopping."""
        while not self.stopping:
            for gate in self._waits:
                await self._first(self._stopping.wait(), gate.wait_closed())
            async with self._capacity:
                await self._capacity.wait_for(
                    lambda: (
                        self.stopping
                        or len(self._held) + self._reserved + self._batch
                        <= self.settings.concurrency
                    )
                )
                if self.stopping:
                    return False
                if self._waits:  # a circuit or gate opened while this poll waited for room
                    continue
                self._reserved += self._batch
                return True
        return False

    async def _receive(self) -> list[ReceivedMessage] | None:
        """One long poll; None when stopping began first (the poll is left to finish on
        its own thread, and what it brings is released)."""
        receive = asyncio.ensure_future(
            self.queue.receive(
                max_messages=self._batch,
                wait_seconds=self.settings.wait_time_seconds,
                visibility_timeout=self.settings.visibility_timeout,
            )
        )
        if not self.stopping:
            stop = asyncio.ensure_future(self._stopping.wait())
            await asyncio.wait({receive, stop}, return_when=asyncio.FIRST_COMPLETED)
            stop.cancel()
        if receive.done():
            return receive.result()
        self._outstanding.add(receive)
        receive.add_done_callback(self._release_late)
        return None

    def _release_late(self, receive: asyncio.Task[list[ReceivedMessage]]) -> None:
        self._outstanding.discard(receive)
        if receive.cancelled() or receive.exception() is not None or not receive.result():
            return
        # The batchers may be closed by now: one direct call.
        changes = [(m.receipt_handle, 0) for m in receive.result()]
        task: asyncio.Task[object] = asyncio.ensure_future(
            self.queue.change_visibility_batch(changes)
        )
        self._late_releases.add(task)
        task.add_done_callback(self._late_releases.discard)

    def _hands_back(self) -> bool:
        return any(circuit.name in self._handing_back for circuit in self.paused)

    async def _unreserve(self) -> None:
        async with self._capacity:
            self._reserved -= self._batch
            self._capacity.notify_all()

    async def _sleep_unless_stopping(self, seconds: float) -> None:
        with contextlib.suppress(TimeoutError):
            await asyncio.wait_for(self._stopping.wait(), timeout=seconds)

    @staticmethod
    async def _first(*waits: Awaitable[object]) -> None:
        tasks = [asyncio.ensure_future(wait) for wait in waits]
        try:
            await asyncio.wait(tasks, return_when=asyncio.FIRST_COMPLETED)
        finally:
            for task in tasks:
                task.cancel()

    # -- one message ------------------------------------------------------------------------

    async def _handle(self, message: ReceivedMessage, receive_context: trace.SpanContext) -> None:
        producer = extract_context(message.message_attributes)
        producer_span = trace.get_current_span(producer).get_span_context()
        links = [Link(receive_context)]
        if producer_span.is_valid:
            links.insert(0, Link(producer_span))
        try:
            with (
                tracer.start_as_current_span(
                    f"process {self.queue.name}",
                    context=producer,
                    kind=SpanKind.CONSUMER,
                    links=links,
                    attributes={
                        "messaging.system": "aws_sqs",
                        "messaging.operation.name": "process",
                        "messaging.operation.type": "process",
                        "messaging.destination.name": self.queue.name,
                        "messaging.message.id": message.message_id,
                        "messaging.aws.sqs.receive_count": message.receive_count,
                        "limbo.provider": self.handler.name,
                    },
                ) as span,
                # Bound before the handler parses anything, so even an unparseable
                # message's lines say which handler and which queue message they are about.
                bind_message(provider=self.handler.name, sqs_message_id=message.message_id),
            ):
                wait = due_in(message)
                if wait > 0.5:
                    # A moved copy received before it is due: not an attempt yet, and
                    # attempt_of() allows for this one receipt, so it waits in place.
                    await self._defer_in_place(message, wait)
                    return
                while True:
                    outcome = await self._run_handler(message)
                    if not isinstance(outcome, Unavailable):
                        await self._settle(message, outcome, span)
                        return
                    if not await self._hold_while_paused(outcome, span):
                        await self._release([message.receipt_handle])
                        return
        except asyncio.CancelledError:
            # Shutdown ran out of grace: let another worker have it straight away (unless
            # it is done and only its delete is on its way).
            if message.receipt_handle in self._held:
                await asyncio.shield(self._release([message.receipt_handle]))
            raise
        finally:
            await self._let_go(message)

    async def _let_go(self, message: ReceivedMessage) -> None:
        """The message needs no more work (nor heartbeat): its slot is free for another."""
        if self._held.pop(message.receipt_handle, None) is None:
            return
        self.metrics.in_flight.set(len(self._held))
        async with self._capacity:
            self._capacity.notify_all()

    async def _run_handler(self, message: ReceivedMessage) -> Outcome:
        try:
            return await self.handler.handle(message)
        except Exception as error:
            # Only the class: an exception's text can carry what it was handed (headers).
            log.exception("handler raised; retrying later")
            reason = f"{self.handler.name} handler raised {type(error).__name__}"
            delay = retry_delay(
                attempt_of(message),
                base=self.settings.retry_base_seconds,
                cap=self.settings.retry_max_seconds,
            )
            return Retry(reason, delay)

    async def _hold_while_paused(self, outcome: Unavailable, span: trace.Span) -> bool:
        """Keep the message (the heartbeat keeps it invisible) until the circuit closes;
        False when stopping came first, or at once when it is to be handed back."""
        circuit = outcome.circuit
        if circuit.name not in self._circuits:
            self._circuits[circuit.name] = circuit
            circuit.on_change = self._circuit_changed
        span.add_event("paused", {"circuit": circuit.name})
        if circuit.trip(outcome.reason):
            log.error(
                "paused: receiving nothing until the dependency answers",
                circuit=circuit.name,
                reason=outcome.reason,
                held=len(self._held),
            )
        if outcome.hand_back:
            self._handing_back.add(circuit.name)
            return False
        self._handing_back.discard(circuit.name)
        await self._first(self._stopping.wait(), circuit.wait_closed())
        return not self.stopping

    def _circuit_changed(self, circuit: Circuit) -> None:
        self.metrics.paused(circuit.name, not circuit.is_closed)
        if circuit.is_closed:
            log.info("resumed", circuit=circuit.name, probes=circuit.probes)

    async def _settle(self, message: ReceivedMessage, outcome: Outcome, span: trace.Span) -> None:
        if isinstance(outcome, Done):
            # Counted when known: the delete may linger up to a second for company.
            self.metrics.outcome(outcome.outcome)
            await self._delete(message)
        elif isinstance(outcome, Retry):
            await self._retry(message, outcome, span)
        elif isinstance(outcome, DeadLetter):
            span.set_status(Status(StatusCode.ERROR, sqs_text(outcome.reason)))
            await self._dead_letter(message, outcome.reason, outcome=outcome.outcome)
        elif isinstance(outcome, Defer):
            # Not an attempt, but SQS counts the receive: in place, the next receipt's
            # count (and the redrive policy's) would take it for one. A moved copy
            # carries the attempts made so far instead, so a deferral costs none.
            attempts = attempt_of(message) - 1
            if self.settings.retry_moves and await self._move(message, attempts, outcome.delay):
                self.metrics.outcome("deferred")
                log.info("deferred", delay=visibility_seconds(outcome.delay), moved=True)
                return
            await self._defer_in_place(message, outcome.delay)

    async def _defer_in_place(self, message: ReceivedMessage, delay: float) -> None:
        self.metrics.outcome("deferred")
        log.info("deferred", delay=visibility_seconds(delay))
        await self._change_visibility(message, delay, "could not defer")

    async def _delete(self, message: ReceivedMessage) -> None:
        # The delete may linger up to DELETE_LINGER for company; the slot need not.
        await self._let_go(message)
        with tracer.start_as_current_span(
            f"settle {self.queue.name}",
            kind=SpanKind.CLIENT,
            attributes={
                "messaging.system": "aws_sqs",
                "messaging.operation.name": "delete",
                "messaging.operation.type": "settle",
                "messaging.destination.name": self.queue.name,
            },
        ) as span:
            try:
                await self._deleter.submit(message.receipt_handle)
            except Exception as error:
                self.metrics.queue_error("delete")
                span.set_status(Status(StatusCode.ERROR, str(error)))
                log.warning("delete failed; the message may be delivered again", error=str(error))

    async def _retry(self, message: ReceivedMessage, outcome: Retry, span: trace.Span) -> None:
        attempt = attempt_of(message)
        if attempt >= self.max_attempts:
            reason = f"gave up after {attempt} attempts: {outcome.reason}"
            span.set_status(Status(StatusCode.ERROR, sqs_text(reason)))
            await self._dead_letter(message, reason, outcome="dead_lettered")
            return
        seconds = visibility_seconds(outcome.delay)
        span.add_event(
            "retry", {"reason": outcome.reason, "attempt": attempt, "delay_seconds": seconds}
        )
        log.warning("failed, will retry", reason=outcome.reason, attempt=attempt, delay=seconds)
        self.metrics.outcome("retried")
        if self.settings.retry_moves and await self._move(message, attempt, outcome.delay):
            return
        await self._change_visibility(message, outcome.delay, "could not set retry delay")

    async def _move(self, message: ReceivedMessage, attempt: int, delay: float) -> bool:
        """Re-send the message in a group of its own (see :mod:`.moved`) after ``attempt``
        attempts, due in ``delay`` s, then delete it. False when the copy could not be
        sent: it then waits in place, holding its group."""
        try:
            await self.queue.send(moved_copy(message, attempts=attempt, delay=delay))
        except Exception as error:
            self.metrics.queue_error("move")
            detail = str(error) if isinstance(error, QueueUnavailable) else type(error).__name__
            log.warning(
                "could not move the message out of its group; waiting in place", error=detail
            )
            return False
        await self._delete(message)
        return True

    async def _change_visibility(self, message: ReceivedMessage, delay: float, what: str) -> None:
        try:
            await self._visibility.submit((message.receipt_handle, visibility_seconds(delay)))
        except Exception as error:  # it reappears after its timeout anyway
            self.metrics.queue_error("change_visibility")
            log.warning(what, error=str(error))

    async def _dead_letter(self, message: ReceivedMessage, reason: str, *, outcome: str) -> None:
        reason = sqs_text(reason)
        trace.get_current_span().add_event("dead_letter", {"reason": reason})
        if self.dead_letters is None:
            # No dead-letter queue of limbo's own: the reason is kept in this line only.
            log.error("dropped: no dead-letter queue", reason=reason, outcome=outcome)
            self.metrics.outcome(outcome)
            await self._delete(message)
            return
        letter = dead_letter_message(message, reason)
        for attempt in range(DEAD_LETTER_ATTEMPTS):
            try:
                await self.dead_letters.send(letter)
                break
            except Exception as error:
                self.metrics.queue_error("dead_letter")
                detail = str(error) if isinstance(error, QueueUnavailable) else type(error).__name__
                if attempt == DEAD_LETTER_ATTEMPTS - 1:
                    # Not dead-lettered, so not deleted either: it comes back after its
                    # visibility timeout and is tried again.
                    log.error("dead-letter queue unavailable; message kept", error=detail)
                    return
                log.warning("dead-letter send failed; trying again", error=detail)
                await asyncio.sleep(0.5 * 2**attempt)
        self.metrics.outcome(outcome)
        log.warning("dead-lettered", reason=reason, outcome=outcome)
        await self._delete(message)

    async def _release(self, receipt_handles: list[str]) -> None:
        results = await asyncio.gather(
            *(self._visibility.submit((handle, 0)) for handle in receipt_handles),
            return_exceptions=True,
        )
        for result in results:
            if isinstance(result, BaseException):
                log.warning(
                    "could not release message; it returns after its timeout", error=str(result)
                )

    # -- keeping held messages invisible ----------------------------------------------------

    async def _heartbeat(self) -> None:
        timeout = self.settings.visibility_timeout
        interval = max(1.0, timeout / 3)
        while True:
            await asyncio.sleep(interval / 2)
            now = time.monotonic()
            due = [h for h, held in self._held.items() if now - held.extended_at >= interval]
            if not due:
                continue
            for handle in due:
                self._held[handle].extended_at = now
            results = await asyncio.gather(
                *(self._visibility.submit((handle, timeout)) for handle in due),
                return_exceptions=True,
            )
            failures = [r for r in results if isinstance(r, BaseException)]
            if failures:
                self.metrics.queue_error("change_visibility")
                log.warning(
                    "could not extend visibility", failures=len(failures), error=str(failures[0])
                )
