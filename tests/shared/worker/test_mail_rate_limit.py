"""The mail handler with a send-rate limiter: a real ``Worker`` on in-memory queue fakes,
its limiter on a real shared bucket (moto server's DynamoDB)."""

from __future__ import annotations

import time
from collections.abc import AsyncIterator, Callable

import boto3
import pytest

from limbo_devtools.local_aws import LocalAws
from limbo_shared.provider import TransientProviderError
from limbo_shared.schema import QueuedMail
from limbo_shared.store import DynamoTable, open_table
from limbo_shared.store.bucket import SharedBucket
from limbo_shared.worker import Worker
from limbo_shared.worker.consumer import Consumer
from limbo_shared.worker.ratelimit import RateLimiter

from .conftest import Running, worker_settings
from .fakes import FakeDeadLetters, FakeProvider, FakeQueue, envelope, wait_until

Start = Callable[[Consumer], Running]


@pytest.fixture
async def table(tracked_aws: LocalAws) -> AsyncIterator[DynamoTable]:
    assert tracked_aws.status_table is not None
    table = open_table(
        tracked_aws.status_table,
        region=tracked_aws.region,
        endpoint_url=tracked_aws.endpoint,
        threads=4,
    )
    yield table
    table.close()


def limiter(table: DynamoTable, name: str, rate: float, max_wait: float) -> RateLimiter:
    async def source() -> float | None:
        return rate

    return RateLimiter(name, SharedBucket(table, name), source, max_wait=max_wait)


async def test_a_send_without_a_token_in_time_is_deferred_not_failed(
    running: Start, table: DynamoTable
) -> None:
    queue, dead, provider = FakeQueue(), FakeDeadLetters(), FakeProvider()
    queue.put(envelope("first"))
    queue.put(envelope("second"))
    limit = limiter(table, "deferral", rate=0.1, max_wait=0.3)
    started = time.monotonic()
    run = running(Worker(worker_settings(), provider, queue, dead, limiter=limit))
    await wait_until(lambda: len(provider.sent) == 1 and queue.visibility_changes())
    elapsed = time.monotonic() - started
    await run.stop()
    # One token of burst: one sent; the other waited 0.3 s, then went back until the next
    # token, 10 s after the first less the time since (however slow this machine is).
    assert len(provider.sent) == 1
    [(_, seconds)] = queue.visibility_changes()[:1]
    assert 10 - elapsed - 1 <= seconds <= 10 + 1
    assert dead.sent == []


async def test_a_throttling_answer_lowers_the_shared_rate(
    running: Start, table: DynamoTable, tracked_aws: LocalAws
) -> None:
    async def too_fast(mail: QueuedMail) -> str:
        raise TransientProviderError("fake answered 429", retry_after=1, throttled=True)

    queue, dead = FakeQueue(), FakeDeadLetters()
    queue.put(envelope())
    limit = limiter(table, "throttled", rate=50, max_wait=5)
    run = running(Worker(worker_settings(), FakeProvider(too_fast), queue, dead, limiter=limit))
    await wait_until(lambda: queue.visibility_changes())
    await run.stop()
    item = boto3.client(
        "dynamodb", region_name=tracked_aws.region, endpoint_url=tracked_aws.endpoint
    ).get_item(TableName=tracked_aws.status_table or "", Key={"pk": {"S": "rate#throttled"}})
    assert float(item["Item"]["cut"]["N"]) == 0.5
