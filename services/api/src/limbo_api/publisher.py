"""Publishing accepted mail to the FIFO queue, in batches, with a span per message."""

from __future__ import annotations

import asyncio
import random
import time
import uuid
from collections.abc import Sequence

from opentelemetry import context as otel_context
from opentelemetry import trace
from opentelemetry.trace import Link, SpanKind, Status, StatusCode

from limbo_shared.batching import Batcher
from limbo_shared.logs import get_logger
from limbo_shared.propagation import extract_context, inject_context
from limbo_shared.queue import (
    SQS_MESSAGE_LIMIT,
    EntryFailed,
    OutgoingMessage,
    QueueUnavailable,
    SqsQueue,
)
from limbo_shared.scheduling import (
    DUE_AT_ATTRIBUTE,
    GROUP_ID_ATTRIBUTE,
    MESSAGE_ID_ATTRIBUTE,
    STREAM_ATTRIBUTE,
    Wait,
    next_step,
)
from limbo_shared.schema import QueuedMail
from limbo_shared.telemetry import messaging_attributes

from .metrics import ApiMetrics
from .sqs_client import CALL_BOUND

__all__ = ["MAX_BODY_BYTES", "Lanes", "PublishFailed", "Publisher"]

tracer = trace.get_tracer("limbo.api")
log = get_logger("limbo.api")

# Keep room in SQS's per-message limit for the trace attributes.
MAX_BODY_BYTES = SQS_MESSAGE_LIMIT - 4096
# How long past PUBLISH_TIMEOUT a request waits for a batch that SQS already has in
# hand: the longest a SendMessageBatch call of the API's SQS client can take.
IN_FLIGHT_GRACE = CALL_BOUND + 0.5


class PublishFailed(Exception):
    def __init__(self, reason: str, *, retryable: bool) -> None:
        super().__init__(reason)
        self.reason = reason
        self.retryable = retryable


class Lanes:
    """The FIFO group of each message: ``<owner>.<lane>``, the lane read from its id.

    FIFO delivers one group's messages one batch at a time, so lanes let several
    workers send one sender's mail at once, and separate senders never share a lane.
    The lane is a function of the message id, so a message published again (a retry
    with its Idempotency-Key) lands in the same group, as SQS's per-group deduplication
    (high-throughput FIFO) needs. New ids are drawn so that a sender's messages take
    the lanes in turn: a group is held until its message is deleted, and the workers'
    deletes wait up to a second for company, so at a trickle a message must not land in
    the lane the one before it still holds (16 lanes at 10/s come round every 1.6 s).
    """

    def __init__(self, count: int) -> None:
        self.count = count
        self._next: dict[str, int] = {}  # one entry per API key name: a bounded set

    def lane_of(self, message_id: str) -> int:
        return int(message_id.replace("-", "")[:8], 16) % self.count

    def group_id(self, owner: str, message_id: str) -> str:
        return f"{owner}.{self.lane_of(message_id)}"

    def new_id(self, owner: str) -> str:
        """A random (version 4) id in ``owner``'s next lane; each process starts at a
        random lane, so replicas do not move in step."""
        lane = self._next.get(owner)
        if lane is None:
            lane = random.randrange(self.count)
        self._next[owner] = (lane + 1) % self.count
        drawn = uuid.uuid4().int
        # The lane is read from the first 32 bits, which carry no version or variant.
        head = drawn >> 96
        head += lane - head % self.count
        if head >= 1 << 32:
            head -= self.count
        return str(uuid.UUID(int=(head << 96) | (drawn & ((1 << 96) - 1))))


class Publisher:
    def __init__(
        self,
        queue: SqsQueue,
        metrics: ApiMetrics,
        *,
        lanes: int,
        max_in_flight: int,
        timeout: float,
        linger: float = 0.0,
        in_flight_grace: float = IN_FLIGHT_GRACE,
        schedule: bool = False,
    ) -> None:
        self.queue = queue
        # The schedule queue is a standard queue: no group, no deduplication id, and a
        # per-message delay; the scheduler reads the FIFO group from an attribute.
        self._schedule = schedule
        self._metrics = metrics
        self.lanes = Lanes(lanes)
        self._timeout = timeout
        self._in_flight_grace = in_flight_grace
        self._batcher: Batcher[OutgoingMessage, str] = Batcher(
            self._send_batch,
            max_items=10,
            max_bytes=SQS_MESSAGE_LIMIT,
            size_of=OutgoingMessage.size,
            max_in_flight=max_in_flight,
            company=linger,
            on_batch=metrics.batch_size.observe,
        )

    async def publish(
        self, mail: QueuedMail, body: str, extra_attributes: dict[str, dict[str, str]] | None = None
    ) -> str:
        """Queue one message; answer its SQS MessageId or raise PublishFailed."""
        with tracer.start_as_current_span(
            f"create {self.queue.name}",
            kind=SpanKind.PRODUCER,
            attributes=messaging_attributes(
                self.queue, "create", "create", {"limbo.message.id": mail.id}
            ),
        ) as span:
            attributes: dict[str, dict[str, str]] = {}
            inject_context(attributes)
            attributes.update(extra_attributes or {})
            message = self._message(mail, body, attributes)
            try:
                sqs_id = await self._send(message)
            except TimeoutError:
                reason = self._fail(span, "timeout", "the queue did not answer in time")
                raise PublishFailed(reason, retryable=True) from None
            except QueueUnavailable as error:
                reason = self._fail(span, "unavailable", str(error))
                raise PublishFailed(reason, retryable=True) from None
            except EntryFailed as error:
                reason = self._fail(span, error.code, str(error))
                raise PublishFailed(reason, retryable=not error.sender_fault) from None
            span.set_attribute("messaging.message.id", sqs_id)
            self._metrics.published.inc()
            return sqs_id

    def _message(
        self, mail: QueuedMail, body: str, attributes: dict[str, dict[str, str]]
    ) -> OutgoingMessage:
        group = self.lanes.group_id(mail.owner, mail.id)
        if not self._schedule:
            return OutgoingMessage(
                body=body, group_id=group, deduplication_id=mail.id, attributes=attributes
            )
        due_at = mail.mail.due_at
        if due_at is None:
            raise ValueError("only a scheduled message goes to the schedule queue")
        step = next_step(due_at, time.time())
        attributes = {
            **attributes,
            DUE_AT_ATTRIBUTE: {"DataType": "Number", "StringValue": repr(due_at)},
            GROUP_ID_ATTRIBUTE: {"DataType": "String", "StringValue": group},
            MESSAGE_ID_ATTRIBUTE: {"DataType": "String", "StringValue": mail.id},
            STREAM_ATTRIBUTE: {"DataType": "String", "StringValue": mail.stream},
        }
        delay = step.delay if isinstance(step, Wait) else 0
        return OutgoingMessage(
            body=body,
            group_id=None,
            deduplication_id=None,
            attributes=attributes,
            delay_seconds=delay,
        )

    async def _send(self, message: OutgoingMessage) -> str:
        """The SQS MessageId, or an exception; a 503 must mean "not queued".

        At the deadline a message still waiting for a batch is withdrawn, so it is never
        sent after its client was told to retry (the retry would make a second email).
        One already on its way waits for SQS's answer, which the SQS client's own
        timeouts bound (connect + read), so the answer says what really happened.
        """
        ticket = self._batcher.enqueue(message)
        try:
            return await asyncio.wait_for(asyncio.shield(ticket.future), self._timeout)
        except TimeoutError:
            if ticket.withdraw():
                raise
        log.info("publish deadline passed while the batch was in flight; awaiting SQS")
        return await asyncio.wait_for(asyncio.shield(ticket.future), self._in_flight_grace)

    def _fail(self, span: trace.Span, kind: str, reason: str) -> str:
        self._metrics.publish_failures.labels(kind).inc()
        span.set_status(Status(StatusCode.ERROR, reason))
        span.set_attribute("error.type", kind)
        return reason

    async def _send_batch(self, messages: Sequence[OutgoingMessage]) -> list[str | BaseException]:
        links = []
        for message in messages:
            context = trace.get_current_span(extract_context(message.attributes)).get_span_context()
            if context.is_valid:
                links.append(Link(context))
        # A root span of its own: the batch belongs to no single request's trace.
        with tracer.start_as_current_span(
            f"send {self.queue.name}",
            context=otel_context.Context(),
            kind=SpanKind.CLIENT,
            links=links,
            attributes=messaging_attributes(
                self.queue, "send", "send", {"messaging.batch.message_count": len(messages)}
            ),
        ):
            return await self.queue.send_batch(messages)

    async def aclose(self) -> None:
        """Publish everything already accepted (SIGTERM), then stop."""
        await self._batcher.aclose()
