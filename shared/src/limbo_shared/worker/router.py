"""A worker's part in routing: report its provider's health, and stand by when told.

Every worker reports on the health board every ``HEALTH_INTERVAL`` seconds (at once
when its provider circuit opens or closes). A worker whose provider is not first in
``ROUTING`` also reads the board of the providers before it at that interval and asks
:class:`~.routing.Failover` whether to take mail; while not, its consumer's gate
(:class:`Standby`) is open and it receives nothing, like a paused worker but still ready.
Each switch is one ``routing.switched`` log line and moves the
``limbo_worker_provider_active`` gauge.
"""

from __future__ import annotations

import asyncio
import contextlib
import time
from collections.abc import Awaitable, Callable

from prometheus_client import Counter, Gauge

from ..logs import get_logger
from ..store import StoreUnavailable
from ..store.health import HealthBoard, ProviderHealth, Report
from .health import CallWindow
from .routing import Decision, Failover

__all__ = ["Router", "Standby"]

log = get_logger("limbo.worker.routing")

_ACTIVE = Gauge(
    "limbo_worker_provider_active",
    "1 while this worker's provider takes mail under ROUTING, 0 while it stands by; "
    "reason says why (first_choice, <provider>_paused, _errors, _absent, _recovering, _healthy)",
    ["provider", "reason"],
)
_SWITCHES = Counter(
    "limbo_worker_routing_switches_total",
    "Times this worker's provider started (active=1) or stopped (active=0) taking mail",
    ["provider", "active", "reason"],
)

# How often a change of the provider circuit is looked for between reports.
_CIRCUIT_CHECK = 0.25


class Standby:
    """A consumer gate: open (receive nothing) while this worker stands by."""

    def __init__(self, standing_by: bool) -> None:
        self._taking = asyncio.Event()
        if not standing_by:
            self._taking.set()

    @property
    def is_closed(self) -> bool:
        return self._taking.is_set()

    async def wait_closed(self) -> None:
        await self._taking.wait()

    def set(self, active: bool) -> None:
        if active:
            self._taking.set()
        else:
            self._taking.clear()


class Router:
    def __init__(
        self,
        failover: Failover,
        board: HealthBoard,
        calls: CallWindow,
        *,
        replica: str,
        interval: float,
        paused: Callable[[], bool],
        mail_waiting: Callable[[], Awaitable[bool]] | None = None,
        clock: Callable[[], float] = time.monotonic,
    ) -> None:
        self.failover = failover
        self.board = board
        self.calls = calls
        self.replica = replica
        self.interval = interval
        self._paused = paused
        self._mail_waiting = mail_waiting or _nothing_waiting
        self._clock = clock
        self.standby = Standby(standing_by=not failover.active)
        self.decision = Decision(
            failover.active,
            failover.provider if failover.active else failover.ahead[0],
            "first_choice" if failover.active else "starting",
        )
        self._store_failing = False
        self._show(self.decision, None)

    @property
    def provider(self) -> str:
        return self.failover.provider

    async def run(self, mail_waiting: Callable[[], Awaitable[bool]] | None = None) -> None:
        """Report and decide until cancelled; ``mail_waiting`` asks the queue."""
        if mail_waiting is not None:
            self._mail_waiting = mail_waiting
        log.info(
            "routing",
            policy=">".join(self.failover.policy),
            active=self.decision.active,
            replica=self.replica,
        )
        reported_paused: bool | None = None
        due = 0.0
        while True:
            now = self._clock()
            paused = self._paused()
            if now >= due or paused != reported_paused:
                try:
                    await self.tick()
                except Exception as error:
                    # Routing must not stop for good on one odd answer: try again next time.
                    log.error("routing: report or decision failed", error=type(error).__name__)
                reported_paused, due = paused, now + self.interval
            await asyncio.sleep(_CIRCUIT_CHECK)

    async def tick(self) -> None:
        """One report and, for a fallback, one decision."""
        sends, errors = self.calls.counts()
        try:
            await self.board.report(
                self.provider, self.replica, Report(self._paused(), sends, errors)
            )
            if self.failover.ahead:
                health = await self.board.read(self.failover.ahead)
                await self._decide(health)
        except StoreUnavailable as error:
            # Keep the last decision: with the table down, every worker pauses on it anyway.
            if not self._store_failing:
                log.warning("routing: health board unavailable", error=str(error))
            self._store_failing = True
            return
        self._store_failing = False

    async def _decide(self, health: dict[str, ProviderHealth | None]) -> None:
        waiting = any(h is None for h in health.values()) and await self._mail_waiting()
        decision = self.failover.decide(self._clock(), health, waiting)
        previous, self.decision = self.decision, decision
        self._show(decision, previous)
        self.standby.set(decision.active)
        if decision.active != previous.active:
            _SWITCHES.labels(self.provider, str(int(decision.active)), decision.reason).inc()
            (log.warning if decision.active else log.info)(
                "routing.switched",
                **{"from": previous.sender, "to": decision.sender},
                reason=decision.reason,
            )

    def _show(self, decision: Decision, previous: Decision | None) -> None:
        if previous is not None and previous.reason != decision.reason:
            with contextlib.suppress(KeyError):  # one series per worker: the current reason
                _ACTIVE.remove(self.provider, previous.reason)
        _ACTIVE.labels(self.provider, decision.reason).set(1 if decision.active else 0)


async def _nothing_waiting() -> bool:
    return False
