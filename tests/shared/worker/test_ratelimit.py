"""The send-rate limiter over a real shared bucket (moto server's DynamoDB)."""

from __future__ import annotations

import asyncio
import time
from collections.abc import AsyncIterator

import pytest
from prometheus_client import REGISTRY

from limbo_devtools.local_aws import LocalAws
from limbo_shared.store import DynamoTable, open_table
from limbo_shared.store.bucket import SharedBucket
from limbo_shared.worker.ratelimit import RateLimited, RateLimiter, RateSource


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


def rate_of(value: float | None) -> RateSource:
    async def source() -> float | None:
        return value

    return source


async def test_sends_are_spaced_to_the_rate(table: DynamoTable) -> None:
    limiter = RateLimiter("t1", SharedBucket(table, "t1"), rate_of(20.0), max_wait=5)
    started = time.monotonic()
    await asyncio.gather(*(limiter.acquire() for _ in range(30)))
    elapsed = time.monotonic() - started
    # 4 tokens of burst (0.2 s of the rate), then 26 at 20/s: at least 1.3 s.
    assert elapsed >= 1.25
    assert limiter.rate == 20.0
    waits = REGISTRY.get_sample_value(
        "limbo_worker_rate_limit_wait_seconds_count", {"provider": "t1"}
    )
    assert waits == 30
    await limiter.aclose()


async def test_a_send_that_would_wait_too_long_is_refused(table: DynamoTable) -> None:
    limiter = RateLimiter("t2", SharedBucket(table, "t2"), rate_of(1.0), max_wait=0.3)
    await limiter.acquire()  # the one token of burst
    with pytest.raises(RateLimited) as refused:
        await limiter.acquire()
    assert refused.value.wait > 0.3
    await limiter.aclose()


async def test_no_rate_means_no_limit(table: DynamoTable) -> None:
    limiter = RateLimiter("t3", SharedBucket(table, "t3"), rate_of(None), max_wait=0.1)
    await asyncio.gather(*(limiter.acquire() for _ in range(100)))
    await limiter.aclose()


async def test_an_unreadable_rate_falls_back_to_one_a_second(table: DynamoTable) -> None:
    async def broken() -> float | None:
        raise ConnectionError("no")

    limiter = RateLimiter("t4", SharedBucket(table, "t4"), broken, max_wait=0.1)
    await limiter.acquire()
    assert limiter.rate == 1.0
    await limiter.aclose()
