from __future__ import annotations

from pydantic import Field, field_validator

from limbo_shared.config import standard_queue_url
from limbo_shared.store.records import StatusSettings
from limbo_shared.webhooks import DestinationSettings
from limbo_shared.worker.settings import ConsumerSettings

__all__ = ["WebhookSettings"]


class WebhookSettings(ConsumerSettings, StatusSettings, DestinationSettings):
    """``QUEUE`` is the webhook queue here: a standard queue (per-message delays)."""

    # The registry (endpoints, secrets, attempts) lives in the status table.
    status_table: str = Field(description="DynamoDB table of message status and endpoints")
    # Bound on one attempt: connect, send, and read the answer.
    webhook_timeout: float = Field(default=10.0, gt=0, le=30)
    # Exponential backoff from this, doubling, jittered, at most WEBHOOK_RETRY_MAX...
    webhook_retry_base: float = Field(default=5.0, gt=0, le=3600)
    webhook_retry_max: float = Field(default=4 * 3600.0, gt=0, le=86_400)
    # ...and no new attempt once the webhook is this old (seconds; at least a day).
    webhook_retry_for: float = Field(default=26 * 3600.0, gt=0, le=7 * 86_400)
    # An endpoint failing every attempt for this long is disabled (seconds; 5 days).
    webhook_disable_after: float = Field(default=5 * 86_400.0, gt=0, le=90 * 86_400)
    # Attempts in flight to one endpoint per process: a slow endpoint cannot take every
    # slot of CONCURRENCY from the others.
    webhook_endpoint_concurrency: int = Field(default=4, ge=1, le=1000)
    # Bytes of an endpoint's answer read at most (the rest is dropped with the connection).
    webhook_max_response_bytes: int = Field(default=65_536, ge=0, le=1_048_576)
    # Low by default: deliveries wait on clients' servers, not on CPU.
    concurrency: int = Field(default=64, ge=1, le=1000)

    @field_validator("queue")
    @classmethod
    def _fifo_url(cls, value: str) -> str:  # replaces QueueSettings' FIFO check
        return standard_queue_url(value)
