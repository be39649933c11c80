from __future__ import annotations

from pathlib import Path
from typing import Literal

from pydantic import Field, SecretStr, field_validator

from limbo_shared.attachments import DEFAULT_MAX_ATTACHMENT_BYTES, MAX_ATTACHMENT_BYTES_LIMIT
from limbo_shared.config import QueueSettings, standard_queue_url
from limbo_shared.store import StatusSettings
from limbo_shared.webhooks import DestinationSettings, NotifierSettings

__all__ = ["ApiSettings"]


class ApiSettings(QueueSettings, StatusSettings, DestinationSettings, NotifierSettings):
    port: int = Field(default=8080, ge=1, le=65535)
    host: str = Field(default="0.0.0.0")
    # Bodies above this are refused with 413 before they are read in full. 14 MiB holds
    # the default 10 MB of attachments base64-encoded, with the rest of the JSON.
    max_request_bytes: int = Field(default=14 * 1_048_576, ge=1024, le=32 * 1_048_576)
    # Decoded attachment bytes per message; the ceiling keeps the encoded message within
    # the smallest provider cap (Mailgun's 25 MB).
    max_attachment_bytes: int = Field(
        default=DEFAULT_MAX_ATTACHMENT_BYTES, ge=0, le=MAX_ATTACHMENT_BYTES_LIMIT
    )
    # S3 bucket for queue payloads over SQS's 1 MiB; unset refuses them with 413.
    payload_bucket: str | None = Field(default=None, min_length=3, max_length=63)
    # Standard (not FIFO) SQS queue where scheduled mail waits; unset refuses scheduled_at.
    schedule_queue: str | None = None
    # How far ahead scheduled_at may be.
    max_schedule_hours: float = Field(default=72.0, gt=0, le=30 * 24)
    # MessageGroupId lanes per sender: a FIFO group is worked one batch at a time, so
    # the lanes bound how many workers can send one sender's mail in parallel.
    group_lanes: int = Field(default=16, ge=1, le=1000)
    # API key names whose mail goes to the bulk stream unless a request names its stream.
    bulk_keys: str | None = Field(default=None, description="comma-separated key names")
    # SendMessageBatch calls in flight at once; more requests wait and share a batch.
    publish_concurrency: int = Field(default=4, ge=1, le=64)
    # Longest a partial batch waits for company while requests arrive close together
    # (a burst); a request that comes alone never waits. 0 sends every batch at once.
    publish_linger: float = Field(default=0.02, ge=0, le=1)
    # Bound on the whole publish (batch wait + SQS call) before answering 503.
    publish_timeout: float = Field(default=10.0, gt=0, le=60)
    # `disabled` runs the API open (every request is the owner "default"); there is no
    # implicit open mode: without keys and without this, the API refuses to start.
    auth: Literal["enabled", "disabled"] = "enabled"
    # `name=sha256:<hex>` entries separated by commas or newlines (see limbo-api-key).
    api_keys: str | None = None
    # The same entries, one a line, in a file (a mounted Kubernetes Secret).
    api_keys_file: Path | None = None
    # Domains a `from` may use: the deployment's, and per API key name (senders.py).
    sender_domains: str | None = None
    key_sender_domains: str | None = None
    # Token bucket per API key and per process: requests per second, and the burst.
    # 0 turns rate limiting off.
    rate_limit: float = Field(default=100.0, ge=0, le=1_000_000)
    rate_burst: int = Field(default=200, ge=1, le=1_000_000)

    # The standard SQS queue delivery events travel on (Mailgun webhooks are put there);
    # unset turns the webhook route off.
    events_queue: str | None = None
    # Mailgun's Webhook Signing Key (not the API key); unset turns the webhook route off.
    mailgun_webhook_signing_key: SecretStr | None = None
    # How far a webhook's timestamp may be from now, in seconds, either way.
    mailgun_webhook_tolerance: float = Field(default=900.0, ge=10, le=86_400)
    # Check recipients against the suppression list before queueing (needs STATUS_TABLE).
    suppression: Literal["enabled", "disabled"] = "enabled"

    @field_validator("events_queue")
    @classmethod
    def _events_queue_url(cls, value: str | None) -> str | None:
        if value in (None, ""):
            return None
        assert value is not None
        return standard_queue_url(value, "SNS delivers events to one")

    @field_validator("mailgun_webhook_signing_key", mode="before")
    @classmethod
    def _empty_key_is_unset(cls, value: object) -> object:
        return None if value == "" else value

    @field_validator("auth", "suppression", mode="before")
    @classmethod
    def _lower(cls, value: object) -> object:
        return value.strip().lower() if isinstance(value, str) else value

    @property
    def bulk_key_names(self) -> frozenset[str]:
        return frozenset(name.strip() for name in (self.bulk_keys or "").split(",") if name.strip())

    @field_validator(
        "api_keys",
        "api_keys_file",
        "sender_domains",
        "key_sender_domains",
        "payload_bucket",
        "schedule_queue",
        mode="before",
    )
    @classmethod
    def _empty_is_unset(cls, value: object) -> object:
        return None if value == "" else value

    @field_validator("schedule_queue")
    @classmethod
    def _standard_queue(cls, value: str | None) -> str | None:
        return None if value is None else standard_queue_url(value)

    # Requests to the working routes handled at once; more get 503 (Retry-After: 1) at
    # once. uvicorn's own limit is this plus room for probes (admission.py).
    max_concurrent_requests: int = Field(default=512, ge=1, le=100_000)

    # Seconds a client has to send a request's head, and again its body; a slower one
    # gets 408 and loses the connection, so slow clients cannot hold the server.
    client_timeout: float = Field(default=10.0, gt=0, le=300)
