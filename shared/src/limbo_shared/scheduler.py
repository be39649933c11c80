"""``limbo-scheduler``: moves scheduled mail from the schedule queue to the FIFO queue.

Each message on the (standard) schedule queue carries its due time, FIFO group,
message id and stream as attributes, so the body (possibly an S3 pointer) is never
read. When due it goes to its stream's queue (``BULK_QUEUE`` for bulk mail when set,
else ``QUEUE``). Not yet
due: it is put back with ``DelaySeconds = min(900, time left)`` and the old copy
deleted. Due: its record goes ``scheduled`` → ``queued`` (unless it was canceled) and
it is sent to the FIFO queue under its message id as deduplication id, then deleted.
A crash between two steps repeats a step, never loses a message: a second copy on the
FIFO queue is dropped by SQS's deduplication or by the worker's claim.

The state is all in SQS and DynamoDB, so any number of replicas share the queue.
"""

from __future__ import annotations

import asyncio
import contextlib
import signal
import time
from collections.abc import Mapping
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass
from typing import Any

from pydantic import Field, field_validator

from .aws import OnFirstUse, make_client
from .config import QueueSettings
from .config import standard_queue_url as _standard_queue_url
from .logs import get_logger
from .payload import PayloadStore, PayloadUnavailable
from .queue import OutgoingMessage, QueueUnavailable, ReceivedMessage, SqsQueue
from .scheduling import (
    DUE_AT_ATTRIBUTE,
    GROUP_ID_ATTRIBUTE,
    MESSAGE_ID_ATTRIBUTE,
    STREAM_ATTRIBUTE,
    Due,
    next_step,
)
from .startup import settings_or_exit, start_observability
from .store import ScheduleRecords, StatusSettings, StoreUnavailable, open_table
from .worker.server import health_server

__all__ = ["Done", "Retry", "ScheduleHandler", "SchedulerSettings", "main"]

PROGRAM = "limbo-scheduler"
log = get_logger("limbo.scheduler")
_OWN_ATTRIBUTES = frozenset(
    {DUE_AT_ATTRIBUTE, GROUP_ID_ATTRIBUTE, MESSAGE_ID_ATTRIBUTE, STREAM_ATTRIBUTE}
)
# A message without its attributes was not put there by limbo's API; the worker
# validates (and dead-letters) it like any other, under this group.
_STRAY_GROUP = "unscheduled"


class SchedulerSettings(QueueSettings, StatusSettings):
    schedule_queue: str = Field(description="URL of the standard SQS schedule queue")
    port: int = Field(default=9090, ge=1, le=65535, description="health and metrics port")
    wait_time_seconds: int = Field(default=20, ge=0, le=20)
    # Messages handled at once: one receive batch per ten.
    concurrency: int = Field(default=10, ge=1, le=100)

    @field_validator("schedule_queue")
    @classmethod
    def _standard(cls, value: str) -> str:
        return _standard_queue_url(value)


@dataclass(frozen=True)
class Done:
    """Delete the schedule-queue message: it moved on (back to wait, or to be sent)."""

    what: str


@dataclass(frozen=True)
class Retry:
    """Leave it; it comes back after ``delay`` seconds."""

    reason: str
    delay: int = 5


def _text(attributes: Mapping[str, Mapping[str, Any]], name: str) -> str | None:
    value = attributes.get(name, {}).get("StringValue")
    return value if isinstance(value, str) else None


class ScheduleHandler:
    """What happens to one schedule-queue message; the loop around it is generic."""

    def __init__(
        self,
        schedule: SqsQueue,
        target: SqsQueue,
        records: ScheduleRecords | None,
        payloads: PayloadStore,
        bulk_target: SqsQueue | None = None,
    ) -> None:
        self.schedule = schedule
        self.target = target
        # The bulk stream's queue; without one bulk mail shares ``target`` (as in the API).
        self.bulk_target = bulk_target
        self.records = records
        self.payloads = payloads

    async def handle(self, message: ReceivedMessage, now: float | None = None) -> Done | Retry:
        attributes = message.message_attributes
        due_text = _text(attributes, DUE_AT_ATTRIBUTE)
        message_id = _text(attributes, MESSAGE_ID_ATTRIBUTE)
        try:
            due_at = float(due_text) if due_text is not None else 0.0
        except ValueError:
            due_at = 0.0
        step = next_step(due_at, time.time() if now is None else now)
        try:
            if not isinstance(step, Due):
                # The same body and attributes, invisible for the next stretch.
                await self.schedule.send(
                    OutgoingMessage(
                        body=message.body,
                        group_id=None,
                        deduplication_id=None,
                        attributes=attributes,
                        delay_seconds=step.delay,
                    )
                )
                return Done(f"waiting {step.delay}s more")
            canceled = (
                message_id is not None
                and self.records is not None
                and not await self.records.release(message_id)
            )
            if canceled:
                await self._discard(message)
                return Done("canceled; dropped")
            carried = {k: v for k, v in attributes.items() if k not in _OWN_ATTRIBUTES}
            target = self.target
            if _text(attributes, STREAM_ATTRIBUTE) == "bulk" and self.bulk_target is not None:
                target = self.bulk_target
            await target.send(
                OutgoingMessage(
                    body=message.body,
                    group_id=_text(attributes, GROUP_ID_ATTRIBUTE) or _STRAY_GROUP,
                    deduplication_id=message_id or message.message_id,
                    attributes=carried,
                )
            )
            return Done("handed over for sending")
        except (QueueUnavailable, StoreUnavailable) as error:
            return Retry(str(error))

    async def _discard(self, message: ReceivedMessage) -> None:
        try:
            await self.payloads.discard(message.body, message.message_attributes)
        except PayloadUnavailable as error:
            log.warning("payload of a canceled message not deleted", error=str(error))


class _Loop:
    """Receive, handle concurrently, delete what is done; until SIGTERM."""

    def __init__(self, handler: ScheduleHandler, settings: SchedulerSettings) -> None:
        self.handler = handler
        self.settings = settings
        self.ready = False
        self.stopping = asyncio.Event()

    async def run(self) -> None:
        pollers = -(-self.settings.concurrency // 10)
        await asyncio.gather(*(self._poll() for _ in range(pollers)))

    async def _poll(self) -> None:
        queue = self.handler.schedule
        backoff = 0.5
        while not self.stopping.is_set():
            try:
                messages = await queue.receive(
                    max_messages=10, wait_seconds=self.settings.wait_time_seconds
                )
            except QueueUnavailable as error:
                self.ready = False
                log.warning("receive failed, backing off", error=str(error))
                with contextlib.suppress(TimeoutError):
                    await asyncio.wait_for(self.stopping.wait(), backoff)
                backoff = min(backoff * 2, 20.0)
                continue
            self.ready, backoff = True, 0.5
            if not messages:
                continue
            outcomes = await asyncio.gather(*(self.handler.handle(m) for m in messages))
            done = [
                m.receipt_handle
                for m, o in zip(messages, outcomes, strict=True)
                if isinstance(o, Done)
            ]
            retries = [
                (m.receipt_handle, o.delay)
                for m, o in zip(messages, outcomes, strict=True)
                if isinstance(o, Retry)
            ]
            for message, outcome in zip(messages, outcomes, strict=True):
                log.info(
                    "scheduled message",
                    sqs_message_id=message.message_id,
                    message_id=_text(message.message_attributes, MESSAGE_ID_ATTRIBUTE),
                    outcome=outcome.what if isinstance(outcome, Done) else outcome.reason,
                )
            try:
                if done:
                    await queue.delete_batch(done)
                if retries:
                    await queue.change_visibility_batch(retries)
            except QueueUnavailable as error:
                # Undeleted ones come back and repeat their step: harmless (see above).
                log.warning("could not settle scheduled messages", error=str(error))


async def _serve(settings: SchedulerSettings) -> None:
    threads = -(-settings.concurrency // 10) + 8
    executor = ThreadPoolExecutor(threads, thread_name_prefix="sqs")
    client = make_client(
        "sqs",
        region=settings.region,
        endpoint_url=settings.aws_endpoint_url,
        read_timeout=settings.wait_time_seconds + 10,
        max_pool_connections=threads,
    )
    s3 = OnFirstUse(
        lambda: make_client("s3", region=settings.region, endpoint_url=settings.aws_endpoint_url)
    )
    records = None
    if settings.status_table is not None:
        table = open_table(
            settings.status_table,
            region=settings.region,
            endpoint_url=settings.aws_endpoint_url,
            threads=8,
        )
        records = ScheduleRecords(table)
    handler = ScheduleHandler(
        SqsQueue(client, settings.schedule_queue, executor),
        SqsQueue(client, settings.queue, executor),
        records,
        PayloadStore(s3, executor),
        bulk_target=(
            SqsQueue(client, settings.bulk_queue, executor)
            if settings.bulk_queue is not None and settings.bulk_queue != settings.queue
            else None
        ),
    )
    loop = _Loop(handler, settings)
    server = health_server(settings.port, lambda: loop.ready and not loop.stopping.is_set())
    running = asyncio.create_task(loop.run())
    server_task = asyncio.create_task(server.serve())

    def stop() -> None:
        # A receive in progress only delays the exit by its long poll; nothing is lost
        # by cancelling it (an unreceived or undeleted message stays on the queue).
        loop.stopping.set()
        running.cancel()

    for sig in (signal.SIGTERM, signal.SIGINT):
        asyncio.get_running_loop().add_signal_handler(sig, stop)
    log.info(
        "scheduler started",
        schedule_queue=handler.schedule.name,
        queue=handler.target.name,
        bulk_queue=handler.bulk_target.name if handler.bulk_target else "(shares QUEUE)",
        tracking=records is not None,
    )
    with contextlib.suppress(asyncio.CancelledError):
        await running
    server.exit()
    await asyncio.gather(server_task, return_exceptions=True)
    executor.shutdown(wait=False, cancel_futures=True)


def main() -> None:
    settings = settings_or_exit(PROGRAM, SchedulerSettings)
    telemetry = start_observability(PROGRAM, settings)
    try:
        asyncio.run(_serve(settings))
    finally:
        telemetry.shutdown()
    log.info("stopped")
