"""When a failed webhook is tried again, and when limbo stops trying.

Exponential backoff (the runtime's ``retry_delay``: doubling from WEBHOOK_RETRY_BASE,
jittered, capped at WEBHOOK_RETRY_MAX) until the webhook is WEBHOOK_RETRY_FOR old. SQS
delays a message 15 minutes at most, so a longer wait is several hops: the job carries
its ``due_at`` and goes back on the queue until then; no worker sleeps.
"""

from __future__ import annotations

import math

from limbo_shared.worker.backoff import retry_delay

__all__ = ["MAX_SQS_DELAY", "hop_delay", "next_due"]

MAX_SQS_DELAY = 900


def next_due(
    attempts_made: int, *, now: float, created_at: float, base: float, cap: float, retry_for: float
) -> float | None:
    """Epoch second of the next attempt after ``attempts_made`` failures, or None when
    the webhook is too old for another one."""
    if now - created_at >= retry_for:
        return None
    return now + retry_delay(attempts_made, base=base, cap=cap)


def hop_delay(due_at: float, now: float) -> int:
    """DelaySeconds for the next hop towards ``due_at`` (0 when it is due)."""
    return max(0, min(MAX_SQS_DELAY, math.ceil(due_at - now)))
