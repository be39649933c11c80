"""SES events: a configuration set publishes to SNS, SNS delivers to the events queue.

limbo keeps SNS's envelope (no RawMessageDelivery) so the consumer can check the topic
and verify SNS's signature; the SES record is the envelope's ``Message``. The send
carries limbo's id as the EmailTag ``limbo_id``, which SES returns in ``mail.tags``.
"""

from __future__ import annotations

import json
from datetime import datetime
from typing import Any

from ..schema import LIMBO_ID_TAG
from .model import (
    BounceType,
    DeliveryEvent,
    DeliveryOutcome,
    EventRejected,
    bounded_diagnostic,
)
from .sns import SnsEnvelope, SnsVerifier

__all__ = ["SesEventSource", "parse_ses_record"]


def _epoch(value: object, fallback: float) -> float:
    if not isinstance(value, str):
        return fallback
    try:
        return datetime.fromisoformat(value.replace(" +0000", "+00:00")).timestamp()
    except ValueError:
        return fallback


def _addresses(entries: object, key: str | None = "emailAddress") -> list[tuple[str, Any]]:
    if not isinstance(entries, list):
        return []
    found: list[tuple[str, Any]] = []
    for entry in entries:
        if key is None and isinstance(entry, str):
            found.append((entry, {}))
        elif key is not None and isinstance(entry, dict) and isinstance(entry.get(key), str):
            found.append((entry[key], entry))
    return found


def parse_ses_record(record: dict[str, Any]) -> list[DeliveryEvent]:
    """One event per recipient (each has its own diagnostic); [] for what limbo ignores."""
    mail = record.get("mail") if isinstance(record.get("mail"), dict) else {}
    assert isinstance(mail, dict)
    tags = mail.get("tags") if isinstance(mail.get("tags"), dict) else {}
    assert isinstance(tags, dict)
    ids = tags.get(LIMBO_ID_TAG)
    if not isinstance(ids, list) or not ids or not isinstance(ids[0], str):
        return []  # not sent by limbo (or by a limbo too old to tag)
    message_id = ids[0]
    sent_at = _epoch(mail.get("timestamp"), 0.0)
    kind = record.get("eventType") or record.get("notificationType")

    def event(detail_key: str) -> dict[str, Any]:
        detail = record.get(detail_key)
        return detail if isinstance(detail, dict) else {}

    events: list[DeliveryEvent] = []
    if kind == "Bounce":
        bounce = event("bounce")
        bounce_type = (
            BounceType.PERMANENT
            if bounce.get("bounceType") == "Permanent"
            else BounceType.TRANSIENT  # Transient and Undetermined: not a reason to suppress
        )
        at = _epoch(bounce.get("timestamp"), sent_at)
        for address, entry in _addresses(bounce.get("bouncedRecipients")):
            diagnostic = entry.get("diagnosticCode") or bounce.get("bounceSubType")
            events.append(
                DeliveryEvent(
                    "ses",
                    message_id,
                    DeliveryOutcome.BOUNCED,
                    (address,),
                    at,
                    bounce_type,
                    bounded_diagnostic(diagnostic),
                )
            )
    elif kind == "Complaint":
        complaint = event("complaint")
        at = _epoch(complaint.get("timestamp"), sent_at)
        feedback = bounded_diagnostic(complaint.get("complaintFeedbackType"))
        for address, _ in _addresses(complaint.get("complainedRecipients")):
            events.append(
                DeliveryEvent(
                    "ses", message_id, DeliveryOutcome.COMPLAINED, (address,), at, None, feedback
                )
            )
    elif kind == "Delivery":
        delivery = event("delivery")
        at = _epoch(delivery.get("timestamp"), sent_at)
        response = bounded_diagnostic(delivery.get("smtpResponse"))
        for address, _ in _addresses(delivery.get("recipients"), key=None):
            events.append(
                DeliveryEvent(
                    "ses", message_id, DeliveryOutcome.DELIVERED, (address,), at, None, response
                )
            )
    elif kind == "DeliveryDelay":
        delay = event("deliveryDelay")
        at = _epoch(delay.get("timestamp"), sent_at)
        for address, entry in _addresses(delay.get("delayedRecipients")):
            diagnostic = entry.get("diagnosticCode") or delay.get("delayType")
            events.append(
                DeliveryEvent(
                    "ses",
                    message_id,
                    DeliveryOutcome.DELAYED,
                    (address,),
                    at,
                    None,
                    bounded_diagnostic(diagnostic),
                )
            )
    return events


class SesEventSource:
    name = "ses"

    def __init__(self, verifier: SnsVerifier) -> None:
        self.verifier = verifier

    def parse(self, body: str) -> list[DeliveryEvent]:
        envelope = SnsEnvelope(body)
        self.verifier.verify(envelope)
        if not envelope.is_notification:
            return []  # SubscriptionConfirmation and the like: nothing for limbo
        try:
            record = json.loads(envelope.message)
        except ValueError:
            raise EventRejected("the SNS Message is not an SES event (not JSON)") from None
        if not isinstance(record, dict):
            raise EventRejected("the SNS Message is not an SES event")
        return parse_ses_record(record)
