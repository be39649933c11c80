"""limbo's delivery event: what every event source turns a provider's notification into."""

from __future__ import annotations

from dataclasses import dataclass
from enum import StrEnum
from typing import Protocol

__all__ = [
    "EVENT_SOURCE_ATTRIBUTE",
    "MAX_DIAGNOSTIC",
    "BounceType",
    "DeliveryEvent",
    "DeliveryOutcome",
    "EventRejected",
    "EventSource",
    "bounded_diagnostic",
]

# The SQS message attribute naming the source of a queued event body; the API sets it on
# the webhooks it queues, SNS envelopes (SES) carry none.
EVENT_SOURCE_ATTRIBUTE = "limbo_event_source"
# A provider's diagnostic (an SMTP reply, a reason) is kept this long at most.
MAX_DIAGNOSTIC = 500


class DeliveryOutcome(StrEnum):
    DELAYED = "delayed"
    DELIVERED = "delivered"
    BOUNCED = "bounced"
    UNSUBSCRIBED = "unsubscribed"
    COMPLAINED = "complained"


_PRECEDENCE = {
    DeliveryOutcome.DELAYED: 10,
    DeliveryOutcome.DELIVERED: 20,
    DeliveryOutcome.BOUNCED: 30,
    DeliveryOutcome.UNSUBSCRIBED: 40,
    DeliveryOutcome.COMPLAINED: 50,
}


class BounceType(StrEnum):
    PERMANENT = "permanent"
    TRANSIENT = "transient"


@dataclass(frozen=True)
class DeliveryEvent:
    """One outcome for the recipients of one limbo message, from one provider event."""

    source: str  # "ses", "mailgun": a low-cardinality label
    message_id: str  # limbo's id, carried by the send (EmailTag / v: variable)
    outcome: DeliveryOutcome
    recipients: tuple[str, ...]
    occurred_at: float  # epoch seconds, the provider's event time
    bounce_type: BounceType | None = None
    diagnostic: str | None = None

    @property
    def precedence(self) -> int:
        """Later in a message's life wins: an event applied late never moves it back.

        A delay or a temporary failure (the provider retries) comes before a delivery; a
        hard bounce can follow a delivery (asynchronous bounces); a complaint or an
        unsubscribe can only follow a delivery.
        """
        if self.outcome is DeliveryOutcome.BOUNCED and self.bounce_type is BounceType.TRANSIENT:
            return 15
        return _PRECEDENCE[self.outcome]

    @property
    def suppresses(self) -> bool:
        """A hard bounce, a complaint or an unsubscribe stops further sends to the address."""
        if self.outcome is DeliveryOutcome.BOUNCED:
            return self.bounce_type is BounceType.PERMANENT
        return self.outcome in (DeliveryOutcome.COMPLAINED, DeliveryOutcome.UNSUBSCRIBED)


class EventRejected(Exception):
    """A notification that is not authentic or not limbo's; ``status`` is the HTTP answer."""

    def __init__(self, reason: str, status: int = 403) -> None:
        super().__init__(reason)
        self.reason = reason
        self.status = status


class EventSource(Protocol):
    """A provider in reverse: verify a raw notification and parse it into limbo's events.

    An event that is not about a limbo message (no limbo id) or not about delivery
    (opens, clicks) parses to no events; one that is not authentic raises EventRejected.
    """

    #: Low-cardinality label for metrics and logs: "ses", "mailgun".
    name: str

    def parse(self, body: str) -> list[DeliveryEvent]: ...


def bounded_diagnostic(text: object) -> str | None:
    """The provider's diagnostic, one line, at most MAX_DIAGNOSTIC characters."""
    if not isinstance(text, str) or not text.strip():
        return None
    return " ".join(text.split())[:MAX_DIAGNOSTIC]
