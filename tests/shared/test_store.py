"""The status store against a real DynamoDB emulator: records, claims, expiry, batching."""

from __future__ import annotations

import asyncio
import time
import uuid
from collections.abc import AsyncIterator

import boto3
import pytest
from prometheus_client import REGISTRY

from limbo_devtools.local_aws import LocalAws
from limbo_shared.schema import MailRequest, QueuedMail
from limbo_shared.store import (
    ClaimOutcome,
    IdempotencyKeys,
    MessageStore,
    ReservationOutcome,
    Status,
    open_table,
)

DAY = 86_400


def mail(owner: str = "alice", recipients: int = 2) -> QueuedMail:
    request = MailRequest.model_validate(
        {
            "from": "a@example.com",
            "to": [f"r{i}@example.com" for i in range(recipients)],
            "subject": "S",
            "message": "secret body text",
        }
    )
    return QueuedMail(id=str(uuid.uuid4()), owner=owner, submitted_at=time.time(), mail=request)


def raw_item(aws: LocalAws, key: str) -> dict[str, dict[str, str]]:
    client = boto3.client("dynamodb", endpoint_url=aws.endpoint, region_name=aws.region)
    return dict(
        client.get_item(TableName=aws.status_table, Key={"pk": {"S": key}}, ConsistentRead=True)[
            "Item"
        ]
    )


def calls(operation: str) -> float:
    return (
        REGISTRY.get_sample_value(
            "limbo_status_store_calls_total", {"operation": operation, "result": "ok"}
        )
        or 0.0
    )


@pytest.fixture
async def store(tracked_aws: LocalAws) -> AsyncIterator[MessageStore]:
    assert tracked_aws.status_table is not None
    table = open_table(
        tracked_aws.status_table,
        region=tracked_aws.region,
        endpoint_url=tracked_aws.endpoint,
        threads=16,
    )
    store = MessageStore(table, ttl_days=30)
    yield store
    await store.aclose()
    table.close()


def test_the_table_expires_records_through_ttl(tracked_aws: LocalAws) -> None:
    client = boto3.client(
        "dynamodb", endpoint_url=tracked_aws.endpoint, region_name=tracked_aws.region
    )
    ttl = client.describe_time_to_live(TableName=tracked_aws.status_table)
    assert ttl["TimeToLiveDescription"] == {
        "TimeToLiveStatus": "ENABLED",
        "AttributeName": "expires_at",
    }


async def test_queued_record_has_no_body_and_expires_after_the_ttl(
    store: MessageStore, tracked_aws: LocalAws
) -> None:
    message = mail(recipients=3)
    await store.record_queued(message)
    record = await store.get(message.id)
    assert record is not None
    assert (record.status, record.owner, record.recipients, record.attempts) == (
        Status.QUEUED,
        "alice",
        3,
        0,
    )
    item = raw_item(tracked_aws, f"mail#{message.id}")
    assert int(item["expires_at"]["N"]) == int(message.submitted_at) + 30 * DAY
    stored_text = repr(item)
    assert "secret body text" not in stored_text and "r0@example.com" not in stored_text


async def test_a_burst_of_queued_writes_shares_batch_calls(store: MessageStore) -> None:
    before = calls("transact_write_items")
    messages = [mail() for _ in range(100)]
    await asyncio.gather(*(store.record_queued(m) for m in messages))
    batch_calls = calls("transact_write_items") - before
    # 100 writes, at most 25 per call: 4 calls at best; far fewer than one per message.
    assert 4 <= batch_calls <= 25
    records = await asyncio.gather(*(store.get(m.id) for m in messages))
    assert all(r is not None and r.status is Status.QUEUED for r in records)


async def test_a_late_queued_write_never_replaces_a_later_status(store: MessageStore) -> None:
    # The worker got there first (sent, and another message mid-send); the API's
    # `queued` for them, arriving late in one batch with fresh ones, changes nothing.
    sent, sending, fresh = mail(), mail(), [mail() for _ in range(3)]
    claim = await store.claim(sent, provider="mailgun", lease_seconds=30)
    await store.mark_sent(claim, provider="mailgun", provider_message_id="<p@mg>")
    await store.claim(sending, provider="ses", lease_seconds=30)
    await asyncio.gather(*(store.record_queued(m) for m in [sent, sending, *fresh]))
    records = {m.id: await store.get(m.id) for m in [sent, sending, *fresh]}
    assert records[sent.id] is not None and records[sent.id].status is Status.SENT  # type: ignore[union-attr]
    assert records[sent.id].provider_message_id == "<p@mg>"  # type: ignore[union-attr]
    assert records[sending.id].status is Status.SENDING  # type: ignore[union-attr]
    assert all(records[m.id].status is Status.QUEUED for m in fresh)  # type: ignore[union-attr]


async def test_only_one_of_many_concurrent_claims_wins(store: MessageStore) -> None:
    message = mail()
    await store.record_queued(message)
    claims = await asyncio.gather(
        *(store.claim(message, provider="mailgun", lease_seconds=30) for _ in range(12))
    )
    outcomes = [c.outcome for c in claims]
    assert outcomes.count(ClaimOutcome.CLAIMED) == 1
    busy = [c for c in claims if c.outcome is ClaimOutcome.BUSY]
    assert len(busy) == 11 and all(25 < c.busy_for <= 31 for c in busy)


async def test_a_sent_message_is_never_claimed_again(store: MessageStore) -> None:
    message = mail()
    await store.record_queued(message)
    claim = await store.claim(message, provider="mailgun", lease_seconds=30)
    await store.mark_sent(claim, provider="mailgun", provider_message_id="<p1@mg>")
    again = await store.claim(message, provider="ses", lease_seconds=30)
    assert again.outcome is ClaimOutcome.ALREADY_SENT
    record = await store.get(message.id)
    assert record is not None
    assert (record.status, record.provider, record.provider_message_id, record.attempts) == (
        Status.SENT,
        "mailgun",
        "<p1@mg>",
        1,
    )
    assert record.sent_at is not None


async def test_an_expired_lease_can_be_taken_over(store: MessageStore) -> None:
    message = mail()
    # Long enough that the next call lands inside it even on a loaded machine.
    first = await store.claim(message, provider="mailgun", lease_seconds=3)
    assert first.outcome is ClaimOutcome.CLAIMED
    assert (await store.claim(message, provider="mailgun", lease_seconds=30)).outcome is (
        ClaimOutcome.BUSY
    )
    await asyncio.sleep(3.1)
    second = await store.claim(message, provider="mailgun", lease_seconds=30)
    assert (second.outcome, second.attempts) == (ClaimOutcome.CLAIMED, 2)
    # The first holder lost its lease: its late failure must not overwrite anything.
    await store.mark_sent(second, provider="mailgun", provider_message_id="<p2@mg>")
    await store.mark_unsent(first, Status.RETRYING, "late timeout")
    record = await store.get(message.id)
    assert record is not None and record.status is Status.SENT and record.last_error is None


async def test_claim_creates_the_record_of_a_message_queued_without_tracking(
    store: MessageStore,
) -> None:
    message = mail(owner="bob", recipients=4)
    claim = await store.claim(message, provider="ses", lease_seconds=30)
    assert claim.outcome is ClaimOutcome.CLAIMED
    record = await store.get(message.id)
    assert record is not None
    assert (record.status, record.owner, record.recipients, record.attempts) == (
        Status.SENDING,
        "bob",
        4,
        1,
    )
    assert record.expires_at == int(message.submitted_at) + 30 * DAY


async def test_retrying_keeps_the_error_and_frees_the_message(store: MessageStore) -> None:
    message = mail()
    await store.record_queued(message)
    claim = await store.claim(message, provider="mailgun", lease_seconds=30)
    await store.mark_unsent(claim, Status.RETRYING, "mailgun answered 503")
    record = await store.get(message.id)
    assert record is not None
    assert (record.status, record.last_error) == (Status.RETRYING, "mailgun answered 503")
    again = await store.claim(message, provider="mailgun", lease_seconds=30)
    assert again.attempts == 2
    # The next attempt, on any worker, reads why the last one failed from its claim (a
    # send that got no answer is looked up before it is sent again).
    assert again.record is not None and again.record.last_error == "mailgun answered 503"


async def test_idempotency_keys_expire_after_a_day_and_are_per_owner(
    tracked_aws: LocalAws, store: MessageStore
) -> None:
    keys = IdempotencyKeys(store.table)
    first = await keys.reserve("alice", "k1", fingerprint="f", message_id="m1", lease_seconds=30)
    other = await keys.reserve("bob", "k1", fingerprint="f", message_id="m2", lease_seconds=30)
    assert (first.outcome, other.outcome) == (ReservationOutcome.NEW, ReservationOutcome.NEW)
    client = boto3.client(
        "dynamodb", endpoint_url=tracked_aws.endpoint, region_name=tracked_aws.region
    )
    items = client.scan(TableName=tracked_aws.status_table)["Items"]
    [item] = [i for i in items if i["message_id"]["S"] == "m1"]
    assert "k1" not in item["pk"]["S"]  # stored hashed
    created = float(item["created_at"]["N"])
    assert int(item["expires_at"]["N"]) == int(created) + DAY


async def test_a_send_costs_one_conditional_call_and_a_share_of_a_batch(
    store: MessageStore,
) -> None:
    messages = [mail() for _ in range(40)]
    await asyncio.gather(*(store.record_queued(m) for m in messages))
    updates, batches = calls("update_item"), calls("batch_write_item")

    async def send(message: QueuedMail) -> None:
        claim = await store.claim(message, provider="mailgun", lease_seconds=30)
        await store.mark_sent(claim, provider="mailgun", provider_message_id=f"<{message.id}>")

    await asyncio.gather(*(send(m) for m in messages))
    assert calls("update_item") - updates == 40  # the claims
    assert calls("batch_write_item") - batches < 40  # the `sent` records, shared
    records = await asyncio.gather(*(store.get(m.id) for m in messages))
    assert all(r is not None and r.status is Status.SENT and r.attempts == 1 for r in records)
