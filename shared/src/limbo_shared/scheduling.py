"""Scheduled send: the `scheduled_at` field and the scheduler's one decision.

FIFO queues have no per-message delay, so a scheduled message waits on a standard SQS
queue (the schedule queue), re-enqueued with ``DelaySeconds = min(900, time left)``
until it is due, then handed to the FIFO queue the workers read. The waiting is SQS's:
nothing is held in a process, so restarts lose nothing and replicas share the work.
"""

from __future__ import annotations

import math
import re
from dataclasses import dataclass
from datetime import UTC, datetime
from typing import Annotated

from pydantic import AfterValidator, StringConstraints

__all__ = [
    "DUE_AT_ATTRIBUTE",
    "GROUP_ID_ATTRIBUTE",
    "MAX_DELAY_SECONDS",
    "MESSAGE_ID_ATTRIBUTE",
    "STREAM_ATTRIBUTE",
    "Due",
    "ScheduledAt",
    "Wait",
    "next_step",
    "parse_rfc3339",
]

# SQS's largest per-message DelaySeconds (standard queues only).
MAX_DELAY_SECONDS = 900
# What the scheduler needs without reading the body (which may be offloaded to S3).
DUE_AT_ATTRIBUTE = "limbo-due-at"
GROUP_ID_ATTRIBUTE = "limbo-group-id"
MESSAGE_ID_ATTRIBUTE = "limbo-message-id"
# Which stream's FIFO queue the message goes to when due (absent: transactional).
STREAM_ATTRIBUTE = "limbo-stream"

# RFC 3339 date-time: the offset is required (a time without one means nothing here).
_RFC3339 = re.compile(
    r"^\d{4}-\d{2}-\d{2}[Tt]\d{2}:\d{2}:\d{2}(?:\.\d{1,9})?(?:[Zz]|[+-]\d{2}:\d{2})$"
)


def parse_rfc3339(value: str) -> datetime:
    if not _RFC3339.match(value):
        raise ValueError("must be an RFC 3339 date-time with an offset, e.g. 2026-12-01T09:30:00Z")
    # fromisoformat takes at most 6 fraction digits; finer is below SQS's 1 s anyway.
    head, dot, rest = value.partition(".")
    if dot:
        digits = re.match(r"\d+", rest)
        assert digits is not None
        value = f"{head}.{digits.group()[:6].ljust(6, '0')}{rest[digits.end() :]}"
    try:
        return datetime.fromisoformat(value.upper().replace("Z", "+00:00")).astimezone(UTC)
    except ValueError as error:
        raise ValueError(f"is not a valid date-time: {error}") from None


def _rfc3339(value: str) -> str:
    parse_rfc3339(value)
    return value


ScheduledAt = Annotated[
    str, StringConstraints(strict=True, max_length=64), AfterValidator(_rfc3339)
]


@dataclass(frozen=True)
class Due:
    """Hand the message to the FIFO queue now."""


@dataclass(frozen=True)
class Wait:
    """Put it back on the schedule queue, invisible for ``delay`` seconds."""

    delay: int


def next_step(due_at: float, now: float) -> Due | Wait:
    """Due when the time has come; else the next wait, at most SQS's 15 minutes.

    Rounded up: a message woken a fraction early would cost one more round trip.
    """
    left = due_at - now
    if left <= 0:
        return Due()
    return Wait(min(MAX_DELAY_SECONDS, max(1, math.ceil(left))))
