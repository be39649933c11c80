"""What a webhook says: its event types, its JSON payload, and the job that carries it.

The payload is documented in the README ("Webhooks") and the OpenAPI description; it is
serialised once, when the status changes, so every retry signs and sends the same bytes
under the same ``webhook-id`` (Standard Webhooks: the id is the receiver's idempotency key).
"""

from __future__ import annotations

import json
import time
import uuid
from datetime import UTC, datetime
from enum import StrEnum
from typing import Any

from pydantic import BaseModel, ConfigDict, Field

__all__ = ["EVENT_PREFIX", "DeliveryJob", "EventType", "event_payload", "iso_time"]

# `type` in the payload is `email.<status>`, the shape Resend and Svix users know.
EVENT_PREFIX = "email."


class EventType(StrEnum):
    QUEUED = "queued"
    SENT = "sent"
    DELIVERED = "delivered"
    BOUNCED = "bounced"
    COMPLAINED = "complained"
    DELAYED = "delayed"
    FAILED = "failed"
    REJECTED = "rejected"
    SUPPRESSED = "suppressed"


def iso_time(timestamp: float) -> str:
    return (
        datetime.fromtimestamp(timestamp, UTC)
        .isoformat(timespec="milliseconds")
        .replace("+00:00", "Z")
    )


def event_payload(
    event: EventType,
    message_id: str,
    *,
    occurred_at: float,
    recipient: str | None = None,
    provider: str | None = None,
    detail: str | None = None,
) -> dict[str, Any]:
    """``{"type": "email.sent", "timestamp": ..., "data": {"message_id", "status", ...}}``;
    optional fields are left out rather than sent as null."""
    data: dict[str, Any] = {"message_id": message_id, "status": event.value}
    if recipient is not None:
        data["recipient"] = recipient
    if provider is not None:
        data["provider"] = provider
    if detail is not None:
        data["detail"] = detail[:500]
    return {"type": EVENT_PREFIX + event.value, "timestamp": iso_time(occurred_at), "data": data}


class DeliveryJob(BaseModel):
    """One webhook for one endpoint, as it travels on the webhook queue (and back, delayed)."""

    model_config = ConfigDict(extra="forbid", frozen=True)

    webhook_id: str = Field(default_factory=lambda: f"msg_{uuid.uuid4().hex}")
    owner: str
    endpoint_id: str
    event: EventType
    body: str  # the payload, serialised once
    occurred_at: float  # the status change: the start of the delivery-latency clock
    created_at: float = Field(default_factory=time.time)
    attempt: int = 0  # attempts made so far
    due_at: float = 0.0  # not before this epoch second (longer waits hop through SQS)

    @classmethod
    def for_event(
        cls,
        owner: str,
        endpoint_id: str,
        event: EventType,
        payload: dict[str, Any],
        occurred_at: float,
    ) -> DeliveryJob:
        return cls(
            owner=owner,
            endpoint_id=endpoint_id,
            event=event,
            body=json.dumps(payload, separators=(",", ":"), ensure_ascii=False),
            occurred_at=occurred_at,
        )
