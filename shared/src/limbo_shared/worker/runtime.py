"""Receive, send, settle: the loop every provider worker runs.

Messages are received ten at a time by several long-polling receivers, each sent on its
own task (bounded by ``concurrency``), and deleted in batches once the provider has
accepted them. Visibility is extended while a send is slow, transient failures are
released with backoff, permanent ones go to the dead-letter queue with their reason.
"""

from __future__ import annotations

import asyncio
import contextlib
import random
import time
from dataclasses import dataclass, field, replace

from opentelemetry import trace
from opentelemetry.trace import Link, SpanKind, Status, StatusCode
from pydantic import ValidationError

from ..batching import Batcher
from ..logs import bind_message, get_logger
from ..payload import PayloadMissing, PayloadStore, PayloadUnavailable
from ..propagation import MAX_MESSAGE_ATTRIBUTES, extract_context
from ..provider import PermanentProviderError, Provider, TransientProviderError
from ..queue import OutgoingMessage, QueueUnavailable, ReceivedMessage, SqsQueue
from ..schema import QueuedMail
from ..store import ClaimOutcome
from ..store import Status as MessageStatus
from .metrics import WorkerMetrics
from .settings import WorkerSettings
from .tracking import NoTracking, Tracker, TrackerClaim

__all__ = ["Worker"]

log = get_logger("limbo.worker")
tracer = trace.get_tracer("limbo.worker")

RECEIVE_BATCH = 10
# The dead-letter reason travels as a message attribute; keep it readable, not huge.
MAX_REASON = 500
# SQS's limit for one message, body and attributes together.
SQS_MESSAGE_LIMIT = 1_048_576


@dataclass
class _InFlight:
    message: ReceivedMessage
    extended_at: float = field(default_factory=time.monotonic)


class Worker:
    def __init__(
        self,
        settings: WorkerSettings,
        provider: Provider,
        queue: SqsQueue,
        dead_letters: SqsQueue,
        metrics: WorkerMetrics,
        tracker: Tracker | None = None,
        payloads: PayloadStore | None = None,
    ) -> None:
        self.settings = settings
        # Resolves offloaded bodies (S3 pointers); without a client only inline ones work.
        self.payloads = payloads or PayloadStore(None, None)
        self.tracker: Tracker = tracker or NoTracking()
        self.provider = provider
        self.queue = queue
        self.dead_letters = dead_letters
        self.metrics = metrics
        self.max_attempts = settings.max_attempts
        self.ready = False
        self._in_flight: dict[str, _InFlight] = {}
        self._reserved = 0
        self._capacity = asyncio.Condition()
        self._stopping = asyncio.Event()
        self._handlers: set[asyncio.Task[None]] = set()
        # Deletes may wait a few ms for company: nobody waits on them but the FIFO group.
        self._deleter: Batcher[str, None] = Batcher(
            queue.delete_batch, max_items=10, max_in_flight=4, linger=0.005
        )
        self._visibility: Batcher[tuple[str, int], None] = Batcher(
            queue.change_visibility_batch, max_items=10, max_in_flight=2
        )

    @property
    def stopping(self) -> bool:
        return self._stopping.is_set()

    def stop(self) -> None:
        """Begin a graceful drain (SIGTERM): receive nothing more, finish what is in hand."""
        self._stopping.set()

    async def load_redrive_policy(self) -> None:
        """Dead-letter at the queue's own maxReceiveCount so the reason is kept."""
        import json

        try:
            attributes = await self.queue.attributes("RedrivePolicy")
        except QueueUnavailable as error:
            log.warning("redrive policy unknown, using MAX_ATTEMPTS", error=str(error))
            return
        policy = attributes.get("RedrivePolicy")
        if policy:
            self.max_attempts = int(json.loads(policy).get("maxReceiveCount", self.max_attempts))

    async def run(self) -> None:
        receivers = max(1, -(-self.settings.concurrency // RECEIVE_BATCH))
        pollers = [asyncio.create_task(self._poll(), name=f"poll-{i}") for i in range(receivers)]
        heartbeat = asyncio.create_task(self._heartbeat(), name="heartbeat")
        log.info(
            "worker started",
            queue=self.queue.name,
            provider=self.provider.name,
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
        deadline = loop.time() + self.settings.shutdown_grace
        log.info("draining", in_flight=len(self._in_flight), grace=self.settings.shutdown_grace)
        async with self._capacity:
            self._capacity.notify_all()
        # Keep a second back for deleting and releasing what is left.
        if self._handlers:
            await asyncio.wait(set(self._handlers), timeout=max(0.0, deadline - loop.time() - 1))
        for task in list(self._handlers):
            task.cancel()
        if self._handlers:
            await asyncio.wait(set(self._handlers), timeout=1.0)
        _done, pending = await asyncio.wait(pollers, timeout=max(0.1, deadline - loop.time()))
        for task in pending:
            task.cancel()
        await self._deleter.aclose()
        await self._visibility.aclose()
        log.info("drained", unfinished_receives=len(pending))

    # -- receiving ---------------------------------------------------------------------

    async def _poll(self) -> None:
        backoff = 0.5
        while not self.stopping:
            async with self._capacity:
                await self._capacity.wait_for(
                    lambda: (
                        self.stopping
                        or len(self._in_flight) + self._reserved + RECEIVE_BATCH
                        <= max(self.settings.concurrency, RECEIVE_BATCH)
                    )
                )
                if self.stopping:
                    return
                self._reserved += RECEIVE_BATCH
            started = time.time_ns()
            try:
                messages = await self.queue.receive(
                    max_messages=RECEIVE_BATCH,
                    wait_seconds=self.settings.wait_time_seconds,
                    visibility_timeout=self.settings.visibility_timeout,
                )
            except QueueUnavailable as error:
                self.ready = False
                self.metrics.queue_error("receive")
                log.warning("receive failed, backing off", error=str(error), backoff=backoff)
                await self._release_reservation()
                await self._sleep_unless_stopping(backoff * random.uniform(0.5, 1.0))
                backoff = min(backoff * 2, 20.0)
                continue
            self.ready = True
            backoff = 0.5
            for message in messages:
                self._in_flight[message.receipt_handle] = _InFlight(message)
            await self._release_reservation()
            if not messages:
                continue
            self.metrics.received.inc(len(messages))
            self.metrics.in_flight.set(len(self._in_flight))
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
            if self.stopping:
                # Received while draining: hand back at once rather than start new sends.
                await self._release([m.receipt_handle for m in messages])
                return
            for message in messages:
                task = asyncio.create_task(self._handle(message, receive_span.get_span_context()))
                self._handlers.add(task)
                task.add_done_callback(self._handlers.discard)

    async def _release_reservation(self) -> None:
        async with self._capacity:
            self._reserved -= RECEIVE_BATCH
            self._capacity.notify_all()

    async def _sleep_unless_stopping(self, seconds: float) -> None:
        with contextlib.suppress(TimeoutError):
            await asyncio.wait_for(self._stopping.wait(), timeout=seconds)

    # -- one message ---------------------------------------------------------------------

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
                        "limbo.provider": self.provider.name,
                    },
                ) as span,
                bind_message(provider=self.provider.name, sqs_message_id=message.message_id),
            ):
                # Bound here, not only after parsing, so an unparseable message's lines
                # still say which provider and which queue message they are about.
                await self._process(message, span)
        except asyncio.CancelledError:
            # Shutdown ran out of grace: let another worker have it straight away.
            await asyncio.shield(self._release([message.receipt_handle]))
            raise
        finally:
            self._in_flight.pop(message.receipt_handle, None)
            self.metrics.in_flight.set(len(self._in_flight))
            async with self._capacity:
                self._capacity.notify_all()

    async def _process(self, message: ReceivedMessage, span: trace.Span) -> None:
        try:
            body = await self.payloads.resolve(message.body, message.message_attributes)
        except PayloadMissing as error:
            await self._dead_letter(message, str(error), outcome="dead_lettered")
            return
        except PayloadUnavailable as error:
            await self._retry(message, span, str(error), None)
            return
        try:
            mail = QueuedMail.from_json(body)
        except ValidationError as error:
            reason = f"unparseable message: {_first_error(error)}"
            span.set_status(Status(StatusCode.ERROR, reason))
            await self._dead_letter(message, reason, outcome="dead_lettered")
            return
        span.set_attribute("limbo.message.id", mail.id)
        with bind_message(message_id=mail.id, provider=self.provider.name):
            if message.sent_timestamp is not None:
                self.metrics.time_in_queue.observe(max(0.0, time.time() - message.sent_timestamp))
            claim = await self.tracker.claim(mail)
            if not claim.proceed:
                await self._not_claimed(message, span, claim)
                return
            try:
                provider_id = await self._call_provider(mail)
            except PermanentProviderError as error:
                span.set_status(Status(StatusCode.ERROR, error.reason))
                await self.tracker.unsent(claim, MessageStatus.REJECTED, error.reason)
                await self._dead_letter(
                    message, f"rejected by {self.provider.name}: {error.reason}", outcome="rejected"
                )
                return
            except TransientProviderError as error:
                # Recorded before the message is released, so its next receipt can claim it.
                gives_up = message.receive_count >= self.max_attempts
                outcome = MessageStatus.FAILED if gives_up else MessageStatus.RETRYING
                await self.tracker.unsent(claim, outcome, error.reason)
                await self._retry(message, span, error.reason, error.retry_after)
                return
            span.set_attribute("limbo.provider.message_id", provider_id)
            # `sent` before the delete: a crash between the two cannot cause a second send.
            await self.tracker.sent(claim, provider_id)
            if await self._settle(message):
                await self._discard_payload(message)
            self.metrics.outcome("sent")
            log.info("sent", provider_message_id=provider_id, attempt=message.receive_count)

    async def _not_claimed(
        self, message: ReceivedMessage, span: trace.Span, claim: TrackerClaim
    ) -> None:
        """The status store says not to send now: sent already, being sent, or unknown."""
        if claim.unavailable is not None:
            await self._retry(message, span, f"status store: {claim.unavailable}", None)
            return
        assert claim.claim is not None
        if claim.claim.outcome is ClaimOutcome.ALREADY_SENT:
            span.add_event("duplicate_suppressed")
            if await self._settle(message):
                await self._discard_payload(message)
            self.metrics.outcome("duplicate")
            log.warning("already sent; deleted without sending", attempt=message.receive_count)
            return
        # Another worker holds the lease: look again once it has run out.
        delay = int(claim.claim.busy_for) + 1
        self.metrics.outcome("deferred")
        log.info("being sent elsewhere; deferred", delay=delay)
        try:
            await self._visibility.submit((message.receipt_handle, delay))
        except Exception as error:  # it reappears after its timeout anyway
            self.metrics.queue_error("change_visibility")
            log.warning("could not defer", error=str(error))

    async def _call_provider(self, mail: QueuedMail) -> str:
        with tracer.start_as_current_span(
            f"{self.provider.name} send",
            kind=SpanKind.CLIENT,
            attributes={
                "server.address": self.provider.server_address,
                "limbo.provider": self.provider.name,
            },
        ) as span:
            started = time.perf_counter()
            try:
                return await asyncio.wait_for(
                    self.provider.send(mail), timeout=self.settings.send_timeout
                )
            except TimeoutError:
                span.set_status(Status(StatusCode.ERROR, "timeout"))
                raise TransientProviderError(
                    f"no answer within SEND_TIMEOUT={self.settings.send_timeout:g}s"
                ) from None
            except (PermanentProviderError, TransientProviderError) as error:
                span.set_status(Status(StatusCode.ERROR, str(error)))
                span.set_attribute("error.type", type(error).__name__)
                raise
            except Exception as error:
                log.exception("provider raised unexpectedly; retrying later")
                span.set_status(Status(StatusCode.ERROR, repr(error)))
                raise TransientProviderError(f"unexpected error: {error!r}") from error
            finally:
                self.metrics.provider_latency.observe(time.perf_counter() - started)

    async def _discard_payload(self, message: ReceivedMessage) -> None:
        """After the final outcome; a failure leaves the object to the bucket's lifecycle."""
        try:
            await self.payloads.discard(message.body, message.message_attributes)
        except PayloadUnavailable as error:
            log.warning(
                "offloaded payload not deleted; its lifecycle rule expires it", error=str(error)
            )

    async def _settle(self, message: ReceivedMessage) -> bool:
        """Delete the message; False when the delete failed (it may come back)."""
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
                return False
            return True

    async def _retry(
        self, message: ReceivedMessage, span: trace.Span, reason: str, retry_after: float | None
    ) -> None:
        attempt = message.receive_count
        if attempt >= self.max_attempts:
            span.set_status(Status(StatusCode.ERROR, reason))
            await self._dead_letter(
                message, f"gave up after {attempt} attempts: {reason}", outcome="dead_lettered"
            )
            return
        delay = self.settings.retry_base_seconds * 2 ** (attempt - 1)
        delay = min(self.settings.retry_max_seconds, delay * random.uniform(0.8, 1.2))
        if retry_after is not None:
            delay = min(self.settings.retry_max_seconds, max(delay, retry_after))
        span.add_event("retry", {"reason": reason, "attempt": attempt, "delay_seconds": delay})
        log.warning(
            "send failed, will retry", reason=reason, attempt=attempt, delay=round(delay, 1)
        )
        self.metrics.outcome("retried")
        try:
            await self._visibility.submit((message.receipt_handle, int(delay)))
        except Exception as error:
            self.metrics.queue_error("change_visibility")
            log.warning("could not set retry delay", error=str(error))

    async def _dead_letter(self, message: ReceivedMessage, reason: str, *, outcome: str) -> None:
        reason = reason[:MAX_REASON]
        span = trace.get_current_span()
        span.add_event("dead_letter", {"reason": reason})
        try:
            await self.dead_letters.send(_dead_letter_message(message, reason))
        except QueueUnavailable as error:
            # Not dead-lettered, so not deleted either: it comes back and is tried again.
            self.metrics.queue_error("dead_letter")
            log.error("dead-letter queue unavailable; message kept", error=str(error))
            return
        if await self._settle(message):
            await self._discard_payload(message)
        self.metrics.outcome(outcome)
        log.warning("dead-lettered", reason=reason, outcome=outcome)

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

    # -- keeping slow sends invisible -------------------------------------------------------

    async def _heartbeat(self) -> None:
        timeout = self.settings.visibility_timeout
        interval = max(1.0, timeout / 3)
        while True:
            await asyncio.sleep(interval / 2)
            now = time.monotonic()
            due = [h for h, f in self._in_flight.items() if now - f.extended_at >= interval]
            if not due:
                continue
            for handle in due:
                self._in_flight[handle].extended_at = now
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


def _dead_letter_message(message: ReceivedMessage, reason: str) -> OutgoingMessage:
    """The message for the dead-letter queue, within SQS's limits whatever arrived.

    SQS takes at most 10 attributes and 1 MiB of body and attributes together. A poison
    message can already be at either limit, and the reason must still fit beside it,
    or the dead-lettering itself fails and the message comes back for ever: so only
    the first carried attributes are kept (the trace context first), and a body too
    large is cut, saying so.
    """
    own = {
        "limbo-reason": {"DataType": "String", "StringValue": reason},
        "limbo-source-message-id": {"DataType": "String", "StringValue": message.message_id},
    }
    carried = sorted(
        message.message_attributes.items(),
        key=lambda item: item[0] not in ("traceparent", "tracestate"),
    )
    room = MAX_MESSAGE_ATTRIBUTES - len(own) - 1  # one spare for limbo-truncated
    attributes = {**dict(carried[:room]), **own}
    dead = OutgoingMessage(
        body=message.body or "(empty)",
        group_id=message.group_id or "dead-letter",
        deduplication_id=message.message_id,
        attributes=attributes,
    )
    excess = dead.size() - SQS_MESSAGE_LIMIT
    if excess <= 0:
        return dead
    original = len(dead.body.encode())
    note = {"DataType": "String", "StringValue": f"body cut from {original} bytes"}
    keep = max(0, original - excess - 100)
    body = dead.body.encode()[:keep].decode(errors="ignore")
    return replace(dead, body=body or "(empty)", attributes={**attributes, "limbo-truncated": note})


def _first_error(error: ValidationError) -> str:
    first = error.errors()[0]
    where = ".".join(str(part) for part in first["loc"]) or "body"
    return f"{where}: {first['msg']}"
