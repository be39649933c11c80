"""The scheduler's handler against real SQS, S3 and DynamoDB (limbo-moto, in-process)."""

from __future__ import annotations

import time
import uuid
from collections.abc import AsyncIterator
from concurrent.futures import ThreadPoolExecutor
from typing import Any

import boto3
import pytest

from limbo_devtools.local_aws import LocalAws
from limbo_shared.aws import make_client
from limbo_shared.payload import PayloadStore
from limbo_shared.queue import ReceivedMessage, SqsQueue
from limbo_shared.scheduler import Done, ScheduleHandler
from limbo_shared.scheduling import (
    DUE_AT_ATTRIBUTE,
    GROUP_ID_ATTRIBUTE,
    MESSAGE_ID_ATTRIBUTE,
    STREAM_ATTRIBUTE,
)
from limbo_shared.schema import MailRequest, QueuedMail
from limbo_shared.store import MessageStore, ScheduleRecords, Status, open_table

NOW = time.time()


def _mail(due_at: float) -> QueuedMail:
    request = MailRequest.model_validate(
        {
            "from": "a@example.com",
            "to": ["b@example.com"],
            "subject": "S",
            "message": "M",
            "scheduled_at": time.strftime("%Y-%m-%dT%H:%M:%SZ", time.gmtime(due_at)),
        }
    )
    return QueuedMail(id=str(uuid.uuid4()), owner="alice", submitted_at=NOW, mail=request)


def _attributes(mail: QueuedMail, due_at: float) -> dict[str, dict[str, Any]]:
    return {
        DUE_AT_ATTRIBUTE: {"DataType": "Number", "StringValue": repr(due_at)},
        GROUP_ID_ATTRIBUTE: {"DataType": "String", "StringValue": "alice.3"},
        MESSAGE_ID_ATTRIBUTE: {"DataType": "String", "StringValue": mail.id},
        "traceparent": {
            "DataType": "String",
            "StringValue": "00-" + "1" * 32 + "-" + "2" * 16 + "-01",
        },
    }


class Setup:
    def __init__(self, aws: LocalAws) -> None:
        executor = ThreadPoolExecutor(4)
        sqs = make_client("sqs", region=aws.region, endpoint_url=aws.endpoint)
        assert aws.schedule_queue_url and aws.status_table
        self.schedule = SqsQueue(sqs, aws.schedule_queue_url, executor)
        self.fifo = SqsQueue(sqs, aws.queue_url, executor)
        assert aws.bulk_queue_url
        self.bulk = SqsQueue(sqs, aws.bulk_queue_url, executor)
        self.table = open_table(
            aws.status_table, region=aws.region, endpoint_url=aws.endpoint, threads=2
        )
        self.store = MessageStore(self.table, ttl_days=1)
        s3 = make_client("s3", region=aws.region, endpoint_url=aws.endpoint)
        self.payloads = PayloadStore(s3, executor, aws.payload_bucket)
        self.handler = ScheduleHandler(
            self.schedule, self.fifo, ScheduleRecords(self.table), self.payloads, self.bulk
        )

    async def received(self, queue: SqsQueue) -> list[ReceivedMessage]:
        return await queue.receive(max_messages=10, wait_seconds=0)

    def message(self, body: str, attributes: dict[str, dict[str, Any]]) -> ReceivedMessage:
        return ReceivedMessage("sqs-1", "receipt", body, {}, attributes)


@pytest.fixture
async def setup(tracked_aws: LocalAws) -> AsyncIterator[Setup]:
    setup = Setup(tracked_aws)
    yield setup
    await setup.store.aclose()
    setup.table.close()


async def test_a_message_not_yet_due_goes_back_with_the_time_left_as_delay(setup: Setup) -> None:
    mail = _mail(NOW + 3600)
    outcome = await setup.handler.handle(
        setup.message(mail.to_json(), _attributes(mail, NOW + 3600)), now=NOW
    )
    assert outcome == Done("waiting 900s more")
    assert await setup.received(setup.fifo) == []
    # Delayed, so not receivable yet; SQS counts it as delayed.
    attributes = await setup.schedule.attributes("ApproximateNumberOfMessagesDelayed")
    assert attributes["ApproximateNumberOfMessagesDelayed"] == "1"


async def test_a_due_message_is_released_and_handed_to_its_fifo_group(setup: Setup) -> None:
    mail = _mail(NOW - 1)
    await setup.store.record_queued(mail.model_copy(update={"submitted_at": NOW - 10}))
    outcome = await setup.handler.handle(
        setup.message(mail.to_json(), _attributes(mail, NOW - 1)), now=NOW
    )
    assert outcome == Done("handed over for sending")
    [handed] = await setup.received(setup.fifo)
    assert handed.body == mail.to_json()
    assert handed.group_id == "alice.3"
    assert set(handed.message_attributes) == {"traceparent"}
    record = await setup.store.get(mail.id)
    assert record is not None and record.status is Status.QUEUED
    assert await setup.received(setup.bulk) == []


async def test_a_due_bulk_message_goes_to_the_bulk_streams_queue(setup: Setup) -> None:
    mail = _mail(NOW - 1).model_copy(update={"stream": "bulk"})
    await setup.store.record_queued(mail.model_copy(update={"submitted_at": NOW - 10}))
    attributes = {
        **_attributes(mail, NOW - 1),
        STREAM_ATTRIBUTE: {"DataType": "String", "StringValue": "bulk"},
    }
    outcome = await setup.handler.handle(setup.message(mail.to_json(), attributes), now=NOW)
    assert outcome == Done("handed over for sending")
    assert await setup.received(setup.fifo) == []
    [handed] = await setup.received(setup.bulk)
    assert handed.group_id == "alice.3"
    assert set(handed.message_attributes) == {"traceparent"}, "the stream is the queue's now"


async def test_a_canceled_message_is_dropped_with_its_payload(
    setup: Setup, tracked_aws: LocalAws
) -> None:
    mail = _mail(NOW - 1)
    await setup.store.record_queued(mail.model_copy(update={"submitted_at": NOW - 10}))
    cancel = await ScheduleRecords(setup.table).cancel(mail.id, "alice")
    assert cancel.status is Status.CANCELED
    body, size = await setup.payloads.offload(mail.id, mail.to_json())
    outcome = await setup.handler.handle(
        setup.message(body, {**_attributes(mail, NOW - 1), **size}), now=NOW
    )
    assert outcome == Done("canceled; dropped")
    assert await setup.received(setup.fifo) == []
    s3 = boto3.client("s3", endpoint_url=tracked_aws.endpoint, region_name=tracked_aws.region)
    assert tracked_aws.payload_bucket is not None
    assert s3.list_objects_v2(Bucket=tracked_aws.payload_bucket).get("KeyCount") == 0


async def test_only_the_owner_cancels_and_only_while_scheduled(setup: Setup) -> None:
    records = ScheduleRecords(setup.table)
    mail = _mail(NOW + 60)
    await setup.store.record_queued(mail)
    assert (await records.cancel(mail.id, "mallory")).outcome.value == "not_found"
    assert (await records.cancel(mail.id, "alice")).outcome.value == "canceled"
    assert (await records.cancel(mail.id, "alice")).outcome.value == "canceled"
    assert not await records.release(mail.id)
    sent = _mail(NOW - 1)
    await setup.store.record_queued(sent)  # due already: recorded `queued`
    refused = await records.cancel(sent.id, "alice")
    assert (refused.outcome.value, refused.status) == ("too_late", Status.QUEUED)
