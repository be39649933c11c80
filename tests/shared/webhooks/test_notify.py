"""StatusNotifier: one job per subscribed endpoint on the webhook queue (real moto)."""

from __future__ import annotations

import json
from concurrent.futures import ThreadPoolExecutor

from limbo_devtools.local_aws import LocalAws
from limbo_shared.aws import make_client
from limbo_shared.queue import SqsQueue
from limbo_shared.store import open_table
from limbo_shared.webhooks import (
    DeliveryJob,
    EndpointRegistry,
    EventType,
    NotifierSettings,
    StatusNotifier,
)


def _parts(aws: LocalAws) -> tuple[EndpointRegistry, SqsQueue]:
    assert aws.status_table and aws.webhook_queue_url
    table = open_table(aws.status_table, region=aws.region, endpoint_url=aws.endpoint, threads=4)
    client = make_client("sqs", region=aws.region, endpoint_url=aws.endpoint)
    return EndpointRegistry(table), SqsQueue(client, aws.webhook_queue_url, ThreadPoolExecutor(4))


async def _jobs(queue: SqsQueue) -> list[DeliveryJob]:
    received = await queue.receive(max_messages=10, wait_seconds=1)
    return [DeliveryJob.model_validate_json(m.body) for m in received]


async def test_each_subscribed_enabled_endpoint_gets_one_job(tracked_aws: LocalAws) -> None:
    registry, queue = _parts(tracked_aws)
    sent_and_failed = await registry.create("alice", "https://a.example.com", (EventType.SENT,))
    bounced = await registry.create("alice", "https://b.example.com", (EventType.BOUNCED,))
    disabled = await registry.create("alice", "https://c.example.com", (EventType.SENT,))
    await registry.disable("alice", disabled.id, "test")
    await registry.create("bob", "https://d.example.com", (EventType.SENT,))
    notifier = StatusNotifier(registry, queue)

    queued = await notifier.notify("alice", "m-1", "sent", provider="ses", occurred_at=5.0)

    assert queued == 1
    jobs = await _jobs(queue)
    assert [(j.owner, j.endpoint_id, j.event) for j in jobs] == [
        ("alice", sent_and_failed.id, EventType.SENT)
    ]
    assert json.loads(jobs[0].body)["data"] == {
        "message_id": "m-1",
        "status": "sent",
        "provider": "ses",
    }
    assert jobs[0].occurred_at == 5.0
    assert bounced.id not in {j.endpoint_id for j in jobs}


async def test_unknown_types_and_owners_without_endpoints_queue_nothing(
    tracked_aws: LocalAws,
) -> None:
    registry, queue = _parts(tracked_aws)
    notifier = StatusNotifier(registry, queue)
    assert await notifier.notify("nobody", "m", "sent") == 0
    assert await notifier.notify("nobody", "m", "opened") == 0
    assert await _jobs(queue) == []


async def test_endpoints_are_cached_briefly(tracked_aws: LocalAws) -> None:
    registry, queue = _parts(tracked_aws)
    notifier = StatusNotifier(registry, queue, cache_seconds=60)
    assert await notifier.notify("alice", "m", "sent") == 0
    await registry.create("alice", "https://a.example.com", (EventType.SENT,))
    assert await notifier.notify("alice", "m", "sent") == 0  # still the cached answer
    assert await StatusNotifier(registry, queue, cache_seconds=0).notify("alice", "m", "sent") == 1


def test_the_webhook_queue_must_be_a_standard_queue() -> None:
    import pytest
    from pydantic import ValidationError

    with pytest.raises(ValidationError, match="standard queue"):
        NotifierSettings(webhook_queue="https://sqs.us-east-1.amazonaws.com/1/x.fifo")
    assert NotifierSettings(webhook_queue="").webhook_queue is None
