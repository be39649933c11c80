"""From a validated email to a queue message: the rules beyond the schema, the envelope,
S3 offload of large payloads, and which queue (its stream's FIFO queue now, or the
schedule queue, which hands it to its stream's queue when due).

One home for what ``POST /v1/mail`` and ``POST /v1/mail/batch`` both do per message.
"""

from __future__ import annotations

import uuid
from concurrent.futures import ThreadPoolExecutor

from limbo_shared.attachments import AttachmentsTooLarge, check_attachment_size
from limbo_shared.aws import OnFirstUse, make_client
from limbo_shared.payload import PayloadStore, PayloadUnavailable
from limbo_shared.queue import SqsQueue
from limbo_shared.schema import MailRequest, QueuedMail

from .metrics import ApiMetrics
from .publisher import MAX_BODY_BYTES, Publisher, PublishFailed
from .settings import ApiSettings
from .sqs_client import publishing_client
from .streams import stream_of
from .validation import InvalidMail

__all__ = ["Prepared", "Submitter", "batch_ids", "open_submitter"]


class Prepared:
    """One message ready to publish: its envelope and the envelope's JSON."""

    def __init__(self, envelope: QueuedMail, body: str) -> None:
        self.envelope = envelope
        self.body = body

    @property
    def scheduled(self) -> bool:
        # The same rule as the status record's `scheduled` (MessageStore.queued_record).
        due_at = self.envelope.mail.due_at
        return due_at is not None and due_at > self.envelope.submitted_at


def batch_ids(batch_id: str, count: int) -> list[str]:
    """The message ids of a batch, derived from its id: a repeat of the batch under the
    same Idempotency-Key takes over exactly the same ids."""
    namespace = uuid.UUID(batch_id)
    return [str(uuid.uuid5(namespace, str(index))) for index in range(count)]


class Submitter:
    def __init__(
        self,
        settings: ApiSettings,
        publisher: Publisher,
        schedule_publisher: Publisher | None,
        payloads: PayloadStore | None,
        bulk_publisher: Publisher | None = None,
    ) -> None:
        self._settings = settings
        self._bulk_keys = settings.bulk_key_names
        self.publisher = publisher
        # Without BULK_QUEUE the bulk stream's mail shares the transactional queue.
        self.bulk_publisher = bulk_publisher
        self.schedule_publisher = schedule_publisher
        self.payloads = payloads

    def check(self, mail: MailRequest, now: float) -> None:
        """The rules that depend on configuration or the clock; raises InvalidMail."""
        try:
            check_attachment_size(mail.attachments, self._settings.max_attachment_bytes)
        except AttachmentsTooLarge as error:
            raise InvalidMail(f"attachments: {error}", status=413) from None
        due_at = mail.due_at
        if due_at is None or due_at <= now:
            return
        hours = self._settings.max_schedule_hours
        if due_at - now > hours * 3600:
            raise InvalidMail(f"scheduled_at: at most {hours:g} hours ahead (MAX_SCHEDULE_HOURS)")
        if self.schedule_publisher is None:
            raise InvalidMail(
                "scheduled_at cannot be honoured: scheduled send is off on this "
                "deployment (SCHEDULE_QUEUE is unset)",
                status=501,
            )

    def new_id(self, owner: str) -> str:
        """A fresh message id for ``owner``, in the sender's next lane (see Lanes)."""
        return self.publisher.lanes.new_id(owner)

    def prepare(self, owner: str, mail: MailRequest, message_id: str, now: float) -> Prepared:
        envelope = QueuedMail(
            id=message_id,
            owner=owner,
            submitted_at=now,
            stream=stream_of(owner, mail.stream, self._bulk_keys),
            mail=mail,
        )
        try:
            body = envelope.to_json()
        except ValueError:
            raise InvalidMail(
                "body contains text that is not valid Unicode (a lone surrogate)"
            ) from None
        if self.payloads is None and len(body.encode()) > MAX_BODY_BYTES:
            raise InvalidMail(
                f"message is larger than one queue message allows ({MAX_BODY_BYTES} bytes) "
                "and large payloads are off on this deployment (PAYLOAD_BUCKET is unset)",
                status=413,
            )
        return Prepared(envelope, body)

    def with_id(self, prepared: Prepared, message_id: str) -> Prepared:
        if message_id == prepared.envelope.id:
            return prepared
        # A repeat taking over an earlier request's id (all ids are UUIDs: same size).
        envelope = prepared.envelope.model_copy(update={"id": message_id})
        return Prepared(envelope, envelope.to_json())

    async def publish(self, prepared: Prepared) -> str:
        """Queue one message (offloading its payload first when too large for SQS)."""
        body, extra = prepared.body, None
        if self.payloads is not None and len(body.encode()) > MAX_BODY_BYTES:
            try:
                # Keyed by message id: a repeat that takes the id over overwrites it.
                body, extra = await self.payloads.offload(prepared.envelope.id, body)
            except PayloadUnavailable as error:
                raise PublishFailed(str(error), retryable=True) from None
        publisher = self.publisher
        if prepared.envelope.stream == "bulk" and self.bulk_publisher is not None:
            publisher = self.bulk_publisher
        if prepared.scheduled:
            # The scheduler reads the stream from an attribute and picks the queue.
            assert self.schedule_publisher is not None  # check() refused it otherwise
            publisher = self.schedule_publisher
        return await publisher.publish(prepared.envelope, body, extra)

    async def aclose(self) -> None:
        publishers = [self.publisher, self.bulk_publisher, self.schedule_publisher]
        for publisher in publishers:
            if publisher is not None:
                await publisher.aclose()
        # Only once every publisher is done: the stream queues share one client.
        for publisher in publishers:
            if publisher is not None:
                await publisher.queue.aclose()


def open_submitter(
    settings: ApiSettings,
    queue: SqsQueue,
    metrics: ApiMetrics,
    *,
    bulk_queue: SqsQueue | None = None,
) -> Submitter:
    """``bulk_queue`` is the bulk stream's queue; without it bulk mail goes to ``queue``."""

    def publisher(target: SqsQueue, *, schedule: bool = False) -> Publisher:
        return Publisher(
            target,
            metrics,
            lanes=settings.group_lanes,
            max_in_flight=settings.publish_concurrency,
            timeout=settings.publish_timeout,
            linger=settings.publish_linger,
            schedule=schedule,
        )

    threads = settings.publish_concurrency + 4
    schedule_publisher = None
    if settings.schedule_queue is not None:
        target = SqsQueue(
            publishing_client(settings, threads, deduplicated=False), settings.schedule_queue
        )
        schedule_publisher = publisher(target, schedule=True)
    payloads = None
    if settings.payload_bucket is not None:
        s3 = OnFirstUse(
            lambda: make_client(
                "s3",
                region=settings.region,
                endpoint_url=settings.aws_endpoint_url,
                max_pool_connections=threads,
                read_timeout=settings.publish_timeout,
            )
        )
        executor = ThreadPoolExecutor(threads, thread_name_prefix="s3")
        payloads = PayloadStore(s3, executor, settings.payload_bucket)
    bulk_publisher = publisher(bulk_queue) if bulk_queue is not None else None
    return Submitter(settings, publisher(queue), schedule_publisher, payloads, bulk_publisher)
