"""The shared token bucket against a real DynamoDB emulator (moto server): what two
replicas take together never exceeds the burst plus the rate times the time passed."""

from __future__ import annotations

import asyncio
from collections.abc import AsyncIterator

import pytest

from limbo_devtools.local_aws import LocalAws
from limbo_shared.store import DynamoTable, open_table
from limbo_shared.store.bucket import SharedBucket


class Clock:
    """Time the test moves on, so refills are exact (the bucket under test is real)."""

    def __init__(self) -> None:
        self.now = 1_000_000.0

    def __call__(self) -> float:
        return self.now


@pytest.fixture
async def table(tracked_aws: LocalAws) -> AsyncIterator[DynamoTable]:
    assert tracked_aws.status_table is not None
    table = open_table(
        tracked_aws.status_table,
        region=tracked_aws.region,
        endpoint_url=tracked_aws.endpoint,
        threads=8,
    )
    yield table
    table.close()


async def test_a_fresh_bucket_grants_its_burst_then_says_how_long_to_wait(
    table: DynamoTable,
) -> None:
    clock = Clock()
    bucket = SharedBucket(table, "mailgun", clock)
    assert (await bucket.take(5, rate=10, burst=3)).tokens == 3
    empty = await bucket.take(5, rate=10, burst=3)
    assert empty.tokens == 0 and empty.wait == pytest.approx(0.1)
    clock.now += 0.25
    assert (await bucket.take(5, rate=10, burst=3)).tokens == 2


async def test_replicas_share_one_rate(table: DynamoTable) -> None:
    clock = Clock()
    replicas = [SharedBucket(table, "ses", clock) for _ in range(3)]
    granted = 0
    for _ in range(20):  # 2 s of bucket time
        results = await asyncio.gather(*(r.take(2, rate=10, burst=2) for r in replicas))
        granted += sum(g.tokens for g in results)
        clock.now += 0.1
    # A burst of 2, then 10/s for 1.9 s: 21 at most, whoever asked; each tick's 1 token
    # goes to someone, so close to that too.
    assert 18 <= granted <= 21


async def test_a_cut_lowers_the_rate_for_every_replica_until_it_ends(table: DynamoTable) -> None:
    clock = Clock()
    first, second = SharedBucket(table, "mailgun", clock), SharedBucket(table, "mailgun", clock)
    assert (await first.take(10, rate=10, burst=10)).tokens == 10
    await second.cut(0.5, 60)
    clock.now += 1
    assert (await first.take(10, rate=10, burst=10)).tokens == 5
    clock.now += 60
    assert (await first.take(10, rate=10, burst=10)).tokens == 10


async def test_buckets_of_different_providers_are_apart(table: DynamoTable) -> None:
    clock = Clock()
    assert (await SharedBucket(table, "ses", clock).take(4, rate=1, burst=4)).tokens == 4
    assert (await SharedBucket(table, "mailgun", clock).take(4, rate=1, burst=4)).tokens == 4
