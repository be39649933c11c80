"""What a stopping consumer does with its time: the plan of a graceful drain.

SIGTERM gives ``SHUTDOWN_GRACE`` seconds. Running handlers may finish until the last
``SETTLE_RESERVE`` of them; then they are cancelled and what they held is released,
and the batched deletes and visibility changes are flushed. Receives still waiting
on a long poll hold nothing the consumer has seen: they are abandoned at once (a
late answer is released if the process still runs), so an idle consumer stops in
well under a second instead of waiting out its 20 s polls.
"""

from __future__ import annotations

from dataclasses import dataclass

__all__ = ["SETTLE_RESERVE", "DrainPlan", "grace_problem", "plan_drain"]

# Seconds kept back at the end of the grace for deleting and releasing.
SETTLE_RESERVE = 1.0
# How long outstanding receives may still answer once nothing else is left to do.
POLL_PATIENCE = 0.2
# A send is claimed (one DynamoDB call) before it starts, and settled after it ends.
_CLAIM_AND_SETTLE = 2.0


@dataclass(frozen=True)
class DrainPlan:
    """Seconds, counted from SIGTERM."""

    #: running handlers may finish until then; they are cancelled (and release) after
    finish_by: float
    #: cancelled handlers release, and the batchers flush, until then
    settle_by: float
    #: outstanding long polls are abandoned this long after the handlers are done
    poll_patience: float


def plan_drain(grace: float, *, reserve: float = SETTLE_RESERVE) -> DrainPlan:
    """The drain for a grace of ``grace`` seconds; the reserve is at most half of it."""
    grace = max(0.0, grace)
    reserve = min(reserve, grace / 2)
    return DrainPlan(
        finish_by=grace - reserve,
        settle_by=grace,
        poll_patience=min(POLL_PATIENCE, reserve),
    )


def grace_problem(shutdown_grace: float, send_timeout: float) -> str | None:
    """Why ``shutdown_grace`` is too short for ``send_timeout``, or None.

    A send the drain cancels can still be accepted by the provider after its message
    was released and sent again by another worker. The drain cancels only what is
    still running at ``finish_by``; a send is bounded by ``SEND_TIMEOUT`` (and, with
    tracking, covered by a lease longer than that), so a grace that lets every send
    end by itself (claim and settle included) never cancels one.
    """
    needed = send_timeout + _CLAIM_AND_SETTLE + SETTLE_RESERVE
    if plan_drain(shutdown_grace).finish_by >= send_timeout + _CLAIM_AND_SETTLE:
        return None
    return (
        f"SHUTDOWN_GRACE={shutdown_grace:g} must be at least SEND_TIMEOUT + "
        f"{needed - send_timeout:g} = {needed:g} seconds, or a send cut short at shutdown "
        "could still be accepted after its message was released"
    )
