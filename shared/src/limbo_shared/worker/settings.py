from __future__ import annotations

from typing import Self

from pydantic import Field, field_validator, model_validator

from ..config import QueueSettings
from ..store.records import StatusSettings
from ..webhooks.notify import NotifierSettings
from .drain import grace_problem
from .routing import parse_routing

__all__ = ["ConsumerSettings", "WorkerSettings"]


def _fifo_url(value: str) -> str:
    if not value.startswith(("http://", "https://")) or not value.endswith(".fifo"):
        raise ValueError("must be the URL of a FIFO queue (its name ends in .fifo)")
    return value


class ConsumerSettings(QueueSettings):
    """Settings every queue consumer reads, whatever its handler."""

    deadletterqueue: str | None = Field(
        default=None, description="URL of the FIFO dead-letter queue limbo moves messages to"
    )
    port: int = Field(default=9090, ge=1, le=65535, description="health and metrics port")
    # Messages handled at once; with a 50 ms provider, 64 allow well over 500 emails/s.
    concurrency: int = Field(default=64, ge=1, le=1000)
    wait_time_seconds: int = Field(default=20, ge=0, le=20)
    visibility_timeout: int = Field(default=30, ge=5, le=43200)
    # Seconds between SIGTERM and exit; the chart's terminationGracePeriodSeconds is longer.
    shutdown_grace: float = Field(default=25.0, gt=0, le=3600)
    # Attempts before limbo dead-letters a message itself (the queue's redrive policy,
    # when it has one, wins; this is the fallback for a queue without one).
    max_attempts: int = Field(default=5, ge=1, le=1000)
    retry_base_seconds: float = Field(default=5.0, gt=0, le=3600)
    retry_max_seconds: float = Field(default=900.0, gt=0, le=43200)
    # A retry leaves its FIFO group (re-sent under a group of its own, see moved.py), so
    # its backoff delays only itself; false waits in place, holding the group (the old way).
    retry_moves: bool = True
    # Messages of the bulk stream (BULK_QUEUE) handled at once, beside CONCURRENCY's
    # transactional ones: bulk never takes a transactional slot.
    bulk_concurrency: int = Field(default=16, ge=1, le=1000)
    # Seconds between samples of the queues' depth for the limbo_worker_queue_messages gauge; 0 off.
    queue_metrics_interval: float = Field(default=30.0, ge=0, le=3600)

    @field_validator("deadletterqueue")
    @classmethod
    def _dead_letter_url(cls, value: str | None) -> str | None:
        return None if value in (None, "") else _fifo_url(str(value))


class WorkerSettings(ConsumerSettings, StatusSettings, NotifierSettings):
    """Settings every sending worker reads, whatever its provider."""

    deadletterqueue: str = Field(description="URL of the FIFO dead-letter queue")
    send_timeout: float = Field(default=15.0, gt=0, le=300)
    # Longest a send waits for a token of the shared send rate before its message is
    # deferred (put back, not counted as a failure).
    rate_limit_max_wait: float = Field(default=20.0, gt=0, le=600)
    # Seconds between readings of the provider's own rate (SES GetAccount).
    send_rate_refresh: float = Field(default=300.0, ge=10, le=86400)
    # Providers in order of preference (ses>mailgun), read by every worker; unset: every
    # worker takes mail as it comes (README, "Routing and failover").
    routing: str | None = Field(default=None, description="providers in order of preference")
    failover_error_rate: float = Field(default=0.5, gt=0, le=1)
    failover_window: float = Field(default=20.0, ge=1, le=3600)
    failover_min_sends: int = Field(default=10, ge=1, le=100_000)
    failover_hold: float = Field(default=30.0, ge=0, le=3600)
    # Seconds between a worker's health reports, and a fallback's readings of them.
    health_interval: float = Field(default=5.0, ge=0.2, le=60)

    @field_validator("deadletterqueue")
    @classmethod
    def _dead_letter_url(cls, value: str | None) -> str | None:
        return _fifo_url(str(value))

    @field_validator("routing")
    @classmethod
    def _routing(cls, value: str | None) -> str | None:
        if value is None or not value.strip():
            return None
        return ">".join(parse_routing(value))

    @property
    def policy(self) -> tuple[str, ...] | None:
        return tuple(self.routing.split(">")) if self.routing else None

    @model_validator(mode="after")
    def _grace_covers_a_send(self) -> Self:
        problem = grace_problem(self.shutdown_grace, self.send_timeout)
        if problem is not None:
            raise ValueError(problem)
        return self

    @model_validator(mode="after")
    def _routing_has_a_board(self) -> Self:
        if self.routing and self.status_table is None:
            raise ValueError(
                "ROUTING needs STATUS_TABLE: the workers report their provider's health there"
            )
        return self
