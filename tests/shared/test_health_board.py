"""The health board against a real DynamoDB emulator (limbo-moto): replicas' reports,
added up per provider, with stale and departed replicas left out."""

from __future__ import annotations

from collections.abc import AsyncIterator

import boto3
import pytest

from limbo_devtools.local_aws import LocalAws
from limbo_shared.store import DynamoTable, open_table
from limbo_shared.store.health import HealthBoard, ProviderHealth, Report


class Clock:
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
        threads=4,
    )
    yield table
    table.close()


async def test_a_provider_nobody_reported_for_has_no_health(table: DynamoTable) -> None:
    assert await HealthBoard(table, stale=15).read(["ses"]) == {"ses": None}


async def test_each_replica_keeps_its_own_entry_and_readers_add_them_up(
    table: DynamoTable,
) -> None:
    clock = Clock()
    board = HealthBoard(table, stale=15, clock=clock)
    await board.report("ses", "a", Report(paused=False, sends=10, errors=1))
    await board.report("ses", "b", Report(paused=True, sends=4, errors=0))
    await board.report("mailgun", "c", Report(paused=False, sends=2, errors=2))
    await board.report("ses", "a", Report(paused=False, sends=12, errors=3))  # replaces a's
    health = await board.read(["ses", "mailgun"])
    assert health["ses"] == ProviderHealth(replicas=2, paused=True, sends=16, errors=3)
    assert health["mailgun"] == ProviderHealth(replicas=1, paused=False, sends=2, errors=2)


async def test_a_stale_report_is_ignored_and_a_long_gone_replica_removed(
    table: DynamoTable, tracked_aws: LocalAws
) -> None:
    clock = Clock()
    board = HealthBoard(table, stale=15, clock=clock)
    await board.report("ses", "gone", Report(paused=True, sends=0, errors=0))
    clock.now += 16
    await board.report("ses", "live", Report(paused=False, sends=1, errors=0))
    assert await board.read(["ses"]) == {"ses": ProviderHealth(1, False, 1, 0)}
    clock.now += 150  # ten times stale: "gone" is seen as departed, and removed next
    await board.report("ses", "live", Report(paused=False, sends=1, errors=0))
    await board.report("ses", "live", Report(paused=False, sends=1, errors=0))
    dynamodb = boto3.client(
        "dynamodb", endpoint_url=tracked_aws.endpoint, region_name=tracked_aws.region
    )
    item = dynamodb.get_item(
        TableName=str(tracked_aws.status_table), Key={"pk": {"S": "health#ses"}}
    )["Item"]
    assert set(item["replicas"]["M"]) == {"live"}
    # DynamoDB's TTL deletes a board nothing reports on any more.
    assert int(item["expires_at"]["N"]) > clock.now
