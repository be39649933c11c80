"""Mailgun webhooks: verified at the API (signature, age, replay), parsed by the consumer.

Mailgun signs each webhook with the Webhook Signing Key (not the API key): the hex
HMAC-SHA256 of ``timestamp + token``. The send carries limbo's id as ``v:limbo_id``,
which comes back in ``event-data.user-variables``.
"""

from __future__ import annotations

import hashlib
import hmac
import json
import time
from collections.abc import Callable
from dataclasses import dataclass
from typing import Any

from ..schema import LIMBO_ID_TAG
from .model import (
    BounceType,
    DeliveryEvent,
    DeliveryOutcome,
    EventRejected,
    bounded_diagnostic,
)

__all__ = ["MailgunEventSource", "MailgunSignature", "sign_mailgun", "verify_mailgun"]

_OUTCOMES = {
    "delivered": DeliveryOutcome.DELIVERED,
    "failed": DeliveryOutcome.BOUNCED,
    "complained": DeliveryOutcome.COMPLAINED,
    "unsubscribed": DeliveryOutcome.UNSUBSCRIBED,
}


@dataclass(frozen=True)
class MailgunSignature:
    timestamp: str
    token: str
    signature: str


def sign_mailgun(key: str, timestamp: str, token: str) -> str:
    return hmac.new(key.encode(), (timestamp + token).encode(), hashlib.sha256).hexdigest()


def _payload(body: str | bytes) -> dict[str, Any]:
    try:
        payload = json.loads(body)
    except ValueError:
        raise EventRejected("the webhook body is not JSON", status=400) from None
    if not isinstance(payload, dict):
        raise EventRejected("the webhook body is not a JSON object", status=400)
    return payload


def verify_mailgun(
    body: str | bytes,
    key: str,
    *,
    tolerance: float,
    now: Callable[[], float] = time.time,
) -> MailgunSignature:
    """The webhook's signature if authentic and fresh; EventRejected otherwise.

    401 when it carries no signature, 403 when the signature is wrong or too old. Replays
    of a valid signature are the caller's to refuse (the token must be remembered across
    replicas, which needs the store).
    """
    signature = _payload(body).get("signature")
    if not isinstance(signature, dict) or not all(
        isinstance(signature.get(name), str) and signature.get(name)
        for name in ("timestamp", "token", "signature")
    ):
        raise EventRejected("the webhook is not signed", status=401)
    found = MailgunSignature(signature["timestamp"], signature["token"], signature["signature"])
    expected = sign_mailgun(key, found.timestamp, found.token)
    if not hmac.compare_digest(expected.encode(), found.signature.encode()):
        raise EventRejected("the webhook signature does not match", status=403)
    try:
        age = now() - float(found.timestamp)
    except ValueError:
        raise EventRejected("the webhook timestamp is not a number", status=403) from None
    if abs(age) > tolerance:
        raise EventRejected(
            f"the webhook timestamp is {age:.0f}s from now; at most {tolerance:g}s is accepted",
            status=403,
        )
    return found


def _diagnostic(data: dict[str, Any]) -> str | None:
    status = data.get("delivery-status")
    parts: list[str] = []
    if isinstance(status, dict):
        for name in ("code", "message", "description"):
            value = status.get(name)
            if isinstance(value, str | int) and str(value).strip():
                parts.append(str(value))
    if not parts and isinstance(data.get("reason"), str):
        parts.append(data["reason"])
    return bounded_diagnostic(" ".join(parts))


class MailgunEventSource:
    """Parses a webhook the API has verified and queued; the queue is limbo's own."""

    name = "mailgun"

    def parse(self, body: str) -> list[DeliveryEvent]:
        data = _payload(body).get("event-data")
        if not isinstance(data, dict):
            raise EventRejected("the webhook has no event-data", status=400)
        outcome = _OUTCOMES.get(str(data.get("event")))
        variables = data.get("user-variables")
        message_id = variables.get(LIMBO_ID_TAG) if isinstance(variables, dict) else None
        recipient = data.get("recipient")
        if outcome is None or not isinstance(message_id, str) or not isinstance(recipient, str):
            return []  # opens, clicks, mail not sent by limbo
        bounce_type = None
        diagnostic = None
        if outcome is DeliveryOutcome.BOUNCED:
            permanent = data.get("severity") == "permanent"
            bounce_type = BounceType.PERMANENT if permanent else BounceType.TRANSIENT
            diagnostic = _diagnostic(data)
        elif outcome is DeliveryOutcome.DELIVERED:
            diagnostic = _diagnostic(data)
        timestamp = data.get("timestamp")
        at = float(timestamp) if isinstance(timestamp, int | float) else time.time()
        return [
            DeliveryEvent("mailgun", message_id, outcome, (recipient,), at, bounce_type, diagnostic)
        ]
