"""Which provider sends: the routing policy and the decision a fallback worker makes.

The policy is ``ROUTING=ses>mailgun``: providers in order of preference. The first one
always takes mail; each later one takes mail only while every provider before it is
down, and stops again once they have all been healthy for ``FAILOVER_HOLD`` seconds
(so a provider that recovers and fails again does not make the traffic flap).

A provider is down when one of its replicas is paused (its circuit is open: the account
refuses every call), when its replicas' transient errors over the last
``FAILOVER_WINDOW`` seconds are at least ``FAILOVER_ERROR_RATE`` of at least
``FAILOVER_MIN_SENDS`` sends, or when none of its replicas has reported for a while
*and* mail is waiting in the queue (KEDA scales idle workers to zero, so silence alone
is not a failure). :class:`Failover` holds that decision's memory and does no I/O; the
:mod:`.router` feeds it what the health board says.
"""

from __future__ import annotations

import re
from collections.abc import Mapping
from dataclasses import dataclass, field

from ..store.health import ProviderHealth

__all__ = ["Decision", "Failover", "FailoverRules", "parse_routing"]

_NAME = re.compile(r"^[a-z][a-z0-9_-]{0,31}$")


def parse_routing(value: str) -> tuple[str, ...]:
    """``ses>mailgun`` as ``("ses", "mailgun")``; ValueError says what is wrong."""
    if ":" in value or "," in value:
        raise ValueError(
            "weighted routing (ses:80,mailgun:20) is not supported; "
            "give providers in order of preference, e.g. ses>mailgun"
        )
    names = tuple(part.strip().lower() for part in value.split(">"))
    if len(names) < 2:
        raise ValueError("name at least two providers in order of preference, e.g. ses>mailgun")
    for name in names:
        if not _NAME.match(name):
            raise ValueError(f"{name!r} is not a provider name (e.g. ses>mailgun)")
    if len(set(names)) != len(names):
        raise ValueError("names a provider twice")
    return names


@dataclass(frozen=True)
class FailoverRules:
    error_rate: float = 0.5
    min_sends: int = 10
    # Seconds every provider before this one must stay healthy before it stands down.
    hold: float = 30.0
    # Seconds of no report (with mail waiting) before a silent provider counts as down.
    absent_after: float = 15.0


@dataclass(frozen=True)
class Decision:
    active: bool
    #: The provider that takes the mail as this worker sees it: its own when active.
    sender: str
    #: For the metric and the log: ``first_choice``, ``<provider>_paused``,
    #: ``<provider>_errors``, ``<provider>_absent``, ``<provider>_recovering`` (active),
    #: ``<provider>_healthy`` (standing by).
    reason: str


@dataclass
class Failover:
    """The decision of one worker of ``provider`` under ``policy``."""

    policy: tuple[str, ...]
    provider: str
    rules: FailoverRules = field(default_factory=FailoverRules)
    _active: bool = False
    _healthy_since: float | None = None
    _absent_since: dict[str, float] = field(default_factory=dict)

    def __post_init__(self) -> None:
        if self.provider not in self.policy:
            raise ValueError(f"does not name this worker's provider ({self.provider})")
        self.ahead = self.policy[: self.policy.index(self.provider)]
        # A fallback starts standing by: its primary is presumed healthy until shown not.
        self._active = not self.ahead

    @property
    def active(self) -> bool:
        return self._active

    def decide(
        self, now: float, health: Mapping[str, ProviderHealth | None], mail_waiting: bool
    ) -> Decision:
        """``health`` has an entry for each provider ahead of this one (None: no replica
        reported recently); ``mail_waiting`` says the queue has visible messages."""
        if not self.ahead:
            return Decision(True, self.provider, "first_choice")
        name, reason = "", ""
        for name in self.ahead:
            down = self._down(name, health.get(name), now, mail_waiting)
            if down is None:
                break
            reason = down
        else:
            # Every provider before this one is down: take mail.
            self._active, self._healthy_since = True, None
            return Decision(True, self.provider, reason)
        # The first healthy provider ahead takes the mail, once it has held for a while.
        if not self._active:
            return Decision(False, name, f"{name}_healthy")
        if self._healthy_since is None:
            self._healthy_since = now
        if now - self._healthy_since < self.rules.hold:
            return Decision(True, self.provider, f"{name}_recovering")
        self._active, self._healthy_since = False, None
        return Decision(False, name, f"{name}_healthy")

    def _down(
        self, name: str, health: ProviderHealth | None, now: float, mail_waiting: bool
    ) -> str | None:
        """Why ``name`` cannot take the mail now, or None when it can."""
        if health is None or health.replicas == 0:
            if not mail_waiting:
                self._absent_since.pop(name, None)
                return None
            since = self._absent_since.setdefault(name, now)
            return f"{name}_absent" if now - since >= self.rules.absent_after else None
        self._absent_since.pop(name, None)
        if health.paused:
            return f"{name}_paused"
        if health.sends >= self.rules.min_sends and (
            health.errors >= self.rules.error_rate * health.sends
        ):
            return f"{name}_errors"
        return None
