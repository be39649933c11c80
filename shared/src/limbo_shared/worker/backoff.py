"""How long a failed message waits before its next attempt."""

from __future__ import annotations

import math
import random
from collections.abc import Callable

__all__ = ["retry_delay", "visibility_seconds"]


def retry_delay(
    attempt: int,
    *,
    base: float,
    cap: float,
    retry_after: float | None = None,
    jitter: Callable[[float, float], float] = random.uniform,
) -> float:
    """Seconds before attempt ``attempt + 1``: exponential from ``base``, ±20 % jitter, at
    most ``cap``; a provider's Retry-After is honoured (up to the cap) when it is longer.

    The jitter spreads a burst of failures so they do not all come back in one second.
    """
    delay = base * 2.0 ** max(0, attempt - 1)
    delay = min(cap, delay * jitter(0.8, 1.2))
    if retry_after is not None:
        delay = min(cap, max(delay, retry_after))
    return max(0.0, delay)


def visibility_seconds(delay: float) -> int:
    """The whole seconds ChangeMessageVisibility takes for ``delay``: rounded up, never
    down, so a provider's Retry-After of 1.5 s is not answered after 1 s (SQS allows at
    most 12 hours)."""
    return min(43_200, max(0, math.ceil(delay)))
