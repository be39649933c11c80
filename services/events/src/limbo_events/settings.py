from __future__ import annotations

from typing import Self

from pydantic import AliasChoices, Field, field_validator, model_validator

from limbo_shared.store import StatusSettings
from limbo_shared.webhooks import NotifierSettings
from limbo_shared.worker import ConsumerSettings

__all__ = ["EventsSettings"]


class EventsSettings(ConsumerSettings, StatusSettings, NotifierSettings):
    """What ``limbo-events`` reads: the consumer runtime's settings, on the events queue.

    STATUS_TABLE is required (events land there); ``main`` says so when it is unset.
    WEBHOOK_QUEUE, as the workers read it, turns on webhooks for changed outcomes.
    """

    # The standard SQS queue of delivery events. Read from EVENTS_QUEUE, not QUEUE: a
    # deployment gives every pod QUEUE (the mail queue).
    queue: str = Field(
        validation_alias=AliasChoices("events_queue"),
        description="URL of the standard SQS queue of delivery events",
    )
    # The SNS topic SES publishes to; SNS envelopes from any other topic are refused.
    # Unset: no SES events are accepted.
    ses_events_topic_arn: str | None = None
    # Verify SNS's RSA signature (the certificate comes from sns.<region>.amazonaws.com).
    # Only an emulator that cannot sign needs this off.
    sns_verify_signatures: bool = True
    # Events in flight at once; each is a few small DynamoDB calls.
    concurrency: int = Field(default=20, ge=1, le=500)
    # Seconds before a failed event (store unavailable) is received again.
    retry_seconds: int = Field(default=30, ge=0, le=43200)

    @field_validator("queue")
    @classmethod
    def _fifo_url(cls, value: str) -> str:
        # Replaces QueueSettings' check of the same name: SNS delivers to standard queues.
        if not value.startswith(("http://", "https://")):
            raise ValueError("must be the queue's URL (https://sqs.<region>.amazonaws.com/...)")
        if value.endswith(".fifo"):
            raise ValueError("must name a standard queue (SNS delivers events to one)")
        return value

    @field_validator("ses_events_topic_arn", mode="before")
    @classmethod
    def _empty_is_unset(cls, value: object) -> object:
        return None if value == "" else value

    @field_validator("ses_events_topic_arn")
    @classmethod
    def _topic_arn(cls, value: str | None) -> str | None:
        if value is not None and not value.startswith("arn:aws"):
            raise ValueError("must be an SNS topic ARN (arn:aws:sns:<region>:<account>:<name>)")
        return value

    @model_validator(mode="after")
    def _no_mail_dead_letters(self) -> Self:
        # DEADLETTERQUEUE is the mail queue's (FIFO): never the place for an event. A
        # refused event is logged and counted; the events queue's own redrive policy
        # keeps what keeps failing.
        self.deadletterqueue = None
        return self
