"""Outcomes and the suppression list against a real DynamoDB emulator: precedence,
duplicates, out-of-order events, and the batched lookup."""

from __future__ import annotations

import asyncio
import time
from collections.abc import AsyncIterator

import pytest
from prometheus_client import REGISTRY

from limbo_devtools.local_aws import LocalAws
from limbo_shared.events import BounceType, DeliveryEvent, DeliveryOutcome
from limbo_shared.store import DeliveryOutcomes, DynamoTable, Suppressions, open_table

ADDRESS = "someone@example.com"


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


def event(
    outcome: DeliveryOutcome, bounce: BounceType | None = None, at: float = 0.0
) -> DeliveryEvent:
    return DeliveryEvent("ses", "m-1", outcome, (ADDRESS,), at or time.time(), bounce, "why")


async def test_outcomes_move_forward_only_whatever_order_they_arrive_in(table: DynamoTable) -> None:
    outcomes = DeliveryOutcomes(table, ttl_days=30)
    created = time.time()
    # Delivery, then complaint; then the delivery again (late) and a delay (later still).
    assert await outcomes.apply(event(DeliveryOutcome.DELIVERED), ADDRESS, created_at=created)
    assert await outcomes.apply(event(DeliveryOutcome.COMPLAINED), ADDRESS, created_at=created)
    assert not await outcomes.apply(event(DeliveryOutcome.DELIVERED), ADDRESS, created_at=created)
    assert not await outcomes.apply(event(DeliveryOutcome.DELAYED), ADDRESS, created_at=created)
    [recorded] = await outcomes.get("m-1")
    assert (recorded.recipient, recorded.outcome) == (ADDRESS, "complained")


async def test_a_duplicate_is_not_applied_twice_and_keeps_the_first_report(
    table: DynamoTable,
) -> None:
    outcomes = DeliveryOutcomes(table, ttl_days=30)
    first = event(DeliveryOutcome.BOUNCED, BounceType.PERMANENT, at=1000.0)
    again = event(DeliveryOutcome.BOUNCED, BounceType.PERMANENT, at=2000.0)
    assert await outcomes.apply(first, ADDRESS, created_at=time.time())
    assert not await outcomes.apply(again, ADDRESS, created_at=time.time())
    [recorded] = await outcomes.get("m-1")
    assert (recorded.at, recorded.bounce_type, recorded.diagnostic) == (1000.0, "permanent", "why")


async def test_a_temporary_failure_gives_way_to_the_delivery_after_it(table: DynamoTable) -> None:
    outcomes = DeliveryOutcomes(table, ttl_days=30)
    created = time.time()
    assert await outcomes.apply(
        event(DeliveryOutcome.BOUNCED, BounceType.TRANSIENT), ADDRESS, created_at=created
    )
    assert await outcomes.apply(event(DeliveryOutcome.DELIVERED), ADDRESS, created_at=created)
    assert [o.outcome for o in await outcomes.get("m-1")] == ["delivered"]


async def test_racing_duplicates_apply_exactly_once(table: DynamoTable) -> None:
    outcomes = DeliveryOutcomes(table, ttl_days=30)
    results = await asyncio.gather(
        *(
            outcomes.apply(event(DeliveryOutcome.DELIVERED), ADDRESS, created_at=time.time())
            for _ in range(8)
        )
    )
    assert results.count(True) == 1


async def test_concurrent_lookups_share_batch_get_calls(table: DynamoTable) -> None:
    suppressions = Suppressions(table, max_in_flight=1)
    await suppressions.add("alice", "Gone@Example.com", reason="bounce", source="ses")
    await suppressions.add("bob", "other@example.com", reason="bounce", source="ses")

    def calls() -> float:
        sample = REGISTRY.get_sample_value(
            "limbo_status_store_calls_total", {"operation": "batch_get_item", "result": "ok"}
        )
        return sample or 0.0

    before = calls()
    answers = await asyncio.gather(
        *(
            suppressions.suppressed(
                "alice", [f"r{i}@example.com", "gone@example.com", "other@example.com"]
            )
            for i in range(40)
        )
    )
    assert all(answer == {"gone@example.com"} for answer in answers)
    # 120 keys from 40 requests: a handful of BatchGetItem calls, not 40.
    assert calls() - before <= 5
    await suppressions.aclose()


async def test_an_event_does_not_reset_an_existing_entry(table: DynamoTable) -> None:
    suppressions = Suppressions(table)
    assert await suppressions.add("alice", ADDRESS, reason="manual", source="api", detail="asked")
    assert not await suppressions.add(
        "alice", ADDRESS, reason="bounce", source="ses", keep_existing=True
    )
    entry = await suppressions.get("alice", ADDRESS)
    assert entry is not None and (entry.reason, entry.detail) == ("manual", "asked")
    await suppressions.aclose()
