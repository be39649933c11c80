"""Mailgun-shaped webhooks, signed like Mailgun signs them: for the sink and for tests.

The sink posts them back to limbo for its own test addresses (the local part says what
happens, like SES's mailbox simulator): ``success@``, ``bounce@`` (permanent),
``tempfail@`` (temporary), ``complaint@`` and ``unsubscribe@`` (both delivered first).
"""

from __future__ import annotations

import asyncio
import json
import secrets
import time
import uuid
from email.utils import parseaddr
from typing import Any

import httpx

from limbo_shared.events import sign_mailgun

__all__ = ["SIMULATED", "post_webhooks", "simulated_events", "webhook"]

# local part -> the events Mailgun would report, in order.
SIMULATED: dict[str, list[tuple[str, str | None]]] = {
    "success": [("delivered", None)],
    "ooto": [("delivered", None)],
    "bounce": [("failed", "permanent")],
    "suppressionlist": [("failed", "permanent")],
    "tempfail": [("failed", "temporary"), ("delivered", None)],
    "complaint": [("delivered", None), ("complained", None)],
    "unsubscribe": [("delivered", None), ("unsubscribed", None)],
}
_STATUS = {
    ("failed", "permanent"): {
        "code": 550,
        "message": "5.1.1 The email account that you tried to reach does not exist",
        "description": "",
    },
    ("failed", "temporary"): {
        "code": 452,
        "message": "4.2.2 The email account that you tried to reach is over quota",
        "description": "",
    },
    ("delivered", None): {"code": 250, "message": "OK", "description": ""},
}


def webhook(
    key: str,
    *,
    event: str,
    recipient: str,
    limbo_id: str | None,
    severity: str | None = None,
    timestamp: float | None = None,
    token: str | None = None,
    provider_message_id: str = "",
) -> dict[str, Any]:
    """One webhook body as Mailgun sends it, signed with ``key``."""
    now = time.time() if timestamp is None else timestamp
    signed_at = str(int(now))
    token = token or secrets.token_hex(25)
    data: dict[str, Any] = {
        "id": uuid.uuid4().hex[:22],
        "timestamp": now,
        "event": event,
        "recipient": recipient,
        "user-variables": {"limbo_id": limbo_id} if limbo_id else {},
        "message": {"headers": {"message-id": provider_message_id.strip("<>")}},
        "tags": [],
    }
    if severity is not None:
        data["severity"] = severity
        data["reason"] = "bounce" if severity == "permanent" else "generic"
    status = _STATUS.get((event, severity))
    if status is not None:
        data["delivery-status"] = status
    return {
        "signature": {
            "timestamp": signed_at,
            "token": token,
            "signature": sign_mailgun(key, signed_at, token),
        },
        "event-data": data,
    }


def simulated_events(
    key: str, fields: dict[str, list[str]], domains: frozenset[str], provider_message_id: str
) -> list[dict[str, Any]]:
    """Webhooks for the recipients of one accepted message that are test addresses."""
    limbo_id = next(iter(fields.get("v:limbo_id", [])), None)
    bodies = []
    for name in ("to", "cc", "bcc"):
        for value in fields.get(name, []):
            address = parseaddr(value)[1].lower()
            local, _, host = address.partition("@")
            if host not in domains or local not in SIMULATED:
                continue
            for event, severity in SIMULATED[local]:
                bodies.append(
                    webhook(
                        key,
                        event=event,
                        recipient=address,
                        limbo_id=limbo_id,
                        severity=severity,
                        provider_message_id=provider_message_id,
                    )
                )
    return bodies


async def post_webhooks(url: str, bodies: list[dict[str, Any]]) -> None:
    """Post in order, retrying each a few times as Mailgun does (faster)."""
    async with httpx.AsyncClient(timeout=10.0) as client:
        for body in bodies:
            for attempt in range(5):
                try:
                    response = await client.post(
                        url,
                        content=json.dumps(body),
                        headers={"Content-Type": "application/json"},
                    )
                    if response.status_code < 500:
                        break
                except httpx.HTTPError:
                    pass
                await asyncio.sleep(0.5 * (attempt + 1))
