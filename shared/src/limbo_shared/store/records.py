"""What the status store keeps about a message, and the settings that turn it on.

A record never holds the mail itself (no bodies): only what a client or an operator
needs to know where a message is, and what a worker needs to send it once. The one
exception are recipients the API did not send to because they are suppressed: the
client is told which, in the answer and here.
"""

from __future__ import annotations

import re
from dataclasses import dataclass
from datetime import UTC, datetime
from enum import StrEnum
from typing import Any

from pydantic import Field, field_validator
from pydantic_settings import BaseSettings, SettingsConfigDict

__all__ = ["MessageRecord", "Status", "StatusSettings", "message_key"]

# DynamoDB table names: 3-255 characters of letters, digits, underscore, hyphen, dot.
_TABLE_NAME = re.compile(r"^[A-Za-z0-9_.-]{3,255}$")


class Status(StrEnum):
    SCHEDULED = "scheduled"
    CANCELED = "canceled"
    QUEUED = "queued"
    SENDING = "sending"
    SENT = "sent"
    RETRYING = "retrying"
    FAILED = "failed"
    REJECTED = "rejected"


class StatusSettings(BaseSettings):
    """Mixed into the API's and the workers' settings: both read and write the table."""

    model_config = SettingsConfigDict(case_sensitive=False, extra="ignore")

    status_table: str | None = Field(
        default=None, description="DynamoDB table for message status; unset turns tracking off"
    )
    status_ttl_days: int = Field(default=30, ge=1, le=3650)

    @field_validator("status_table", mode="before")
    @classmethod
    def _table_name(cls, value: object) -> object:
        if value in (None, ""):
            return None
        if not isinstance(value, str) or not _TABLE_NAME.match(value):
            raise ValueError("must be a DynamoDB table name (3-255 of A-Z a-z 0-9 _ . -)")
        return value


def message_key(message_id: str) -> str:
    # Message and idempotency records share one table; the prefix keeps them apart.
    return f"mail#{message_id}"


def _iso(timestamp: float | None) -> str | None:
    if timestamp is None:
        return None
    return (
        datetime.fromtimestamp(timestamp, UTC)
        .isoformat(timespec="milliseconds")
        .replace("+00:00", "Z")
    )


@dataclass(frozen=True)
class MessageRecord:
    id: str
    owner: str
    status: Status
    recipients: int
    created_at: float
    updated_at: float
    expires_at: int
    attempts: int = 0
    stream: str = "transactional"
    provider: str | None = None
    provider_message_id: str | None = None
    last_error: str | None = None
    sent_at: float | None = None
    # Recipients left out of the send because they are on the suppression list.
    suppressed: tuple[str, ...] = ()
    # W3C traceparent of the submission, so a delivery event's span joins the message's trace.
    traceparent: str | None = None

    def to_item(self) -> dict[str, Any]:
        """The DynamoDB item (attribute-value form)."""
        item: dict[str, Any] = {
            "pk": {"S": message_key(self.id)},
            "id": {"S": self.id},
            "owner": {"S": self.owner},
            "status": {"S": self.status.value},
            "recipients": {"N": str(self.recipients)},
            "created_at": {"N": repr(self.created_at)},
            "updated_at": {"N": repr(self.updated_at)},
            "expires_at": {"N": str(self.expires_at)},
            "attempts": {"N": str(self.attempts)},
            "stream": {"S": self.stream},
        }
        for name in ("provider", "provider_message_id", "last_error", "traceparent"):
            value = getattr(self, name)
            if value is not None:
                item[name] = {"S": value}
        if self.sent_at is not None:
            item["sent_at"] = {"N": repr(self.sent_at)}
        if self.suppressed:
            item["suppressed"] = {"L": [{"S": address} for address in self.suppressed]}
        return item

    @classmethod
    def from_item(cls, item: dict[str, Any]) -> MessageRecord:
        def text(name: str) -> str | None:
            return item[name]["S"] if name in item else None

        def number(name: str) -> float | None:
            return float(item[name]["N"]) if name in item else None

        return cls(
            id=item["id"]["S"],
            owner=item["owner"]["S"],
            status=Status(item["status"]["S"]),
            recipients=int(number("recipients") or 0),
            created_at=number("created_at") or 0.0,
            updated_at=number("updated_at") or 0.0,
            expires_at=int(number("expires_at") or 0),
            attempts=int(number("attempts") or 0),
            stream=text("stream") or "transactional",
            provider=text("provider"),
            provider_message_id=text("provider_message_id"),
            last_error=text("last_error"),
            sent_at=number("sent_at"),
            traceparent=text("traceparent"),
            suppressed=tuple(entry["S"] for entry in item.get("suppressed", {}).get("L", [])),
        )

    def public(self) -> dict[str, Any]:
        """What ``GET /v1/mail/{id}`` answers: timestamps as ISO 8601 UTC."""
        return {
            "id": self.id,
            "owner": self.owner,
            "status": self.status.value,
            "stream": self.stream,
            "provider": self.provider,
            "provider_message_id": self.provider_message_id,
            "attempts": self.attempts,
            "last_error": self.last_error,
            "recipients": self.recipients,
            "created_at": _iso(self.created_at),
            "updated_at": _iso(self.updated_at),
            "sent_at": _iso(self.sent_at),
            "expires_at": _iso(self.expires_at),
            "suppressed": list(self.suppressed),
        }
