from __future__ import annotations

from pydantic import Field, field_validator

from limbo_shared.config import LoggingSettings
from limbo_shared.store import StatusSettings

__all__ = ["EventsSettings"]


class EventsSettings(LoggingSettings, StatusSettings):
    """What ``limbo-events`` reads; STATUS_TABLE is required (events land there)."""

    events_queue: str = Field(description="URL of the standard SQS queue of delivery events")
    region: str = Field(min_length=1)
    aws_endpoint_url: str | None = None
    # The SNS topic SES publishes to; SNS envelopes from any other topic are refused.
    # Unset: no SES events are accepted.
    ses_events_topic_arn: str | None = None
    # Verify SNS's RSA signature (the certificate comes from sns.<region>.amazonaws.com).
    # Only an emulator that cannot sign needs this off.
    sns_verify_signatures: bool = True
    port: int = Field(default=9090, ge=1, le=65535)
    concurrency: int = Field(default=20, ge=1, le=500)
    wait_time_seconds: int = Field(default=20, ge=0, le=20)
    # Seconds before a failed event (store unavailable) is received again.
    retry_seconds: int = Field(default=30, ge=0, le=43200)
    shutdown_grace: float = Field(default=25.0, gt=0, le=3600)

    @field_validator("events_queue")
    @classmethod
    def _standard_url(cls, value: str) -> str:
        if not value.startswith(("http://", "https://")):
            raise ValueError("must be the queue's URL (https://sqs.<region>.amazonaws.com/...)")
        if value.endswith(".fifo"):
            raise ValueError("must name a standard queue (SNS delivers events to one)")
        return value

    @field_validator("ses_events_topic_arn", "aws_endpoint_url", mode="before")
    @classmethod
    def _empty_is_unset(cls, value: object) -> object:
        return None if value == "" else value

    @field_validator("ses_events_topic_arn")
    @classmethod
    def _topic_arn(cls, value: str | None) -> str | None:
        if value is not None and not value.startswith("arn:aws"):
            raise ValueError("must be an SNS topic ARN (arn:aws:sns:<region>:<account>:<name>)")
        return value
