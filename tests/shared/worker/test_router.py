"""A primary and a fallback worker's routers over one real health board (limbo-moto):
reports, the standby gate, the gauge and one log line per switch."""

from __future__ import annotations

from collections.abc import AsyncIterator, Awaitable, Callable

import pytest
from prometheus_client import REGISTRY
from structlog.testing import capture_logs

from limbo_devtools.local_aws import LocalAws
from limbo_shared.store import DynamoTable, open_table
from limbo_shared.store.health import HealthBoard
from limbo_shared.worker.health import CallWindow
from limbo_shared.worker.router import Router
from limbo_shared.worker.routing import Failover, FailoverRules

POLICY = ("ses", "mailgun")
RULES = FailoverRules(error_rate=0.5, min_sends=4, hold=10.0, absent_after=15.0)


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


class Worker:
    """One worker's side of routing, its provider's circuit a flag the test sets."""

    def __init__(
        self,
        provider: str,
        table: DynamoTable,
        clock: Clock,
        mail_waiting: Callable[[], Awaitable[bool]] | None = None,
    ) -> None:
        self.paused = False
        self.calls = CallWindow(20.0, clock)
        self.router = Router(
            Failover(POLICY, provider, RULES),
            HealthBoard(table, stale=15, clock=clock),
            self.calls,
            replica=f"{provider}-1",
            interval=1.0,
            paused=lambda: self.paused,
            mail_waiting=mail_waiting,
            clock=clock,
        )


def gauge(provider: str, reason: str) -> float | None:
    return REGISTRY.get_sample_value(
        "limbo_worker_provider_active", {"provider": provider, "reason": reason}
    )


async def test_the_fallback_takes_over_from_a_paused_primary_and_hands_back_after_the_hold(
    table: DynamoTable,
) -> None:
    clock = Clock()
    primary, fallback = Worker("ses", table, clock), Worker("mailgun", table, clock)
    assert primary.router.standby.is_closed and not fallback.router.standby.is_closed
    with capture_logs() as logs:
        await primary.router.tick()
        await fallback.router.tick()
        assert not fallback.router.standby.is_closed  # still standing by
        assert gauge("mailgun", "ses_healthy") == 0 and gauge("ses", "first_choice") == 1

        primary.paused = True
        clock.now += 1
        await primary.router.tick()
        await fallback.router.tick()
        assert fallback.router.standby.is_closed  # taking mail
        assert gauge("mailgun", "ses_paused") == 1
        assert gauge("mailgun", "ses_healthy") is None  # one series: the current reason

        primary.paused = False
        for _ in range(10):  # healthy again, for less than the hold
            clock.now += 1
            await primary.router.tick()
            await fallback.router.tick()
            assert fallback.router.standby.is_closed
        assert gauge("mailgun", "ses_recovering") == 1
        clock.now += 1
        await primary.router.tick()
        await fallback.router.tick()
        assert not fallback.router.standby.is_closed
        assert gauge("mailgun", "ses_healthy") == 0
    switches = [line for line in logs if line["event"] == "routing.switched"]
    assert [(s["from"], s["to"], s["reason"]) for s in switches] == [
        ("ses", "mailgun", "ses_paused"),
        ("mailgun", "ses", "ses_healthy"),
    ]


async def test_a_primary_failing_most_sends_is_taken_over_without_a_pause(
    table: DynamoTable,
) -> None:
    clock = Clock()
    primary, fallback = Worker("ses", table, clock), Worker("mailgun", table, clock)
    for failed in (True, True, True, False):
        primary.calls.record(failed=failed)
    await primary.router.tick()
    await fallback.router.tick()
    assert fallback.router.standby.is_closed
    assert fallback.router.decision.reason == "ses_errors"


async def test_a_silent_primary_is_taken_over_only_while_mail_waits(table: DynamoTable) -> None:
    clock = Clock()
    waiting = False

    async def mail_waiting() -> bool:
        return waiting

    fallback = Worker("mailgun", table, clock, mail_waiting)
    for _ in range(20):
        clock.now += 1
        await fallback.router.tick()
    assert not fallback.router.standby.is_closed
    waiting = True
    await fallback.router.tick()
    clock.now += 15
    await fallback.router.tick()
    assert fallback.router.standby.is_closed
    assert fallback.router.decision.reason == "ses_absent"
