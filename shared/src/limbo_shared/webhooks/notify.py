"""``StatusNotifier.notify``: the one call that turns a status change into webhooks.

It finds the owner's endpoints subscribed to the event (cached a few seconds, so a busy
worker does not read the registry per message) and puts one delivery job per endpoint
on the webhook queue, a standard SQS queue of its own: a slow receiver can hold up
webhooks at worst, never mail. It never raises; a status change that cannot be told is
logged and counted, and the mail goes on.
"""

from __future__ import annotations

import asyncio
import time
from concurrent.futures import ThreadPoolExecutor
from typing import Any, Protocol

from opentelemetry import trace
from prometheus_client import Counter
from pydantic import Field, field_validator
from pydantic_settings import BaseSettings, SettingsConfigDict

from ..aws import make_client
from ..config import standard_queue_url
from ..logs import get_logger
from ..propagation import inject_context
from ..queue import QueueUnavailable, SqsQueue
from ..store.table import DynamoTable, StoreUnavailable
from .events import DeliveryJob, EventType, event_payload
from .registry import Endpoint, EndpointRegistry

__all__ = ["NotifierSettings", "StatusNotifier", "WebhookQueue", "open_notifier"]

log = get_logger("limbo.webhooks")
tracer = trace.get_tracer("limbo.webhooks")

_QUEUED = Counter(
    "limbo_webhook_jobs_queued_total",
    "Webhook delivery jobs put on the webhook queue, by event type and result",
    ["event", "result"],
)
# Registry answers are reused this long: a new endpoint gets events within seconds.
CACHE_SECONDS = 5.0


class NotifierSettings(BaseSettings):
    """Read by every process that reports status changes (mail workers, events consumer)."""

    model_config = SettingsConfigDict(case_sensitive=False, extra="ignore")

    webhook_queue: str | None = Field(
        default=None, description="URL of the standard SQS queue of webhook deliveries"
    )

    @field_validator("webhook_queue", mode="before")
    @classmethod
    def _standard_url(cls, value: object) -> object:
        if value in (None, ""):
            return None
        if not isinstance(value, str):
            raise ValueError("must be the queue's URL (https://sqs.<region>.amazonaws.com/...)")
        return standard_queue_url(value)


class WebhookQueue(Protocol):
    async def send_standard(
        self,
        body: str,
        *,
        delay_seconds: int = 0,
        attributes: dict[str, dict[str, Any]] | None = None,
    ) -> str: ...


class StatusNotifier:
    def __init__(
        self,
        registry: EndpointRegistry,
        queue: WebhookQueue,
        *,
        cache_seconds: float = CACHE_SECONDS,
    ) -> None:
        self.registry = registry
        self.queue = queue
        self.cache_seconds = cache_seconds
        self._cache: dict[str, tuple[float, list[Endpoint]]] = {}

    async def notify(
        self,
        owner: str,
        message_id: str,
        status: EventType | str,
        *,
        recipient: str | None = None,
        provider: str | None = None,
        detail: str | None = None,
        occurred_at: float | None = None,
    ) -> int:
        """Queue the webhooks for one status change; answers how many were queued."""
        try:
            event = EventType(status)
        except ValueError:
            log.error("not a webhook event type", status=str(status))
            return 0
        occurred_at = time.time() if occurred_at is None else occurred_at
        try:
            endpoints = [e for e in await self._endpoints(owner) if e.wants(event)]
        except (StoreUnavailable, ValueError, KeyError) as error:
            _QUEUED.labels(event.value, "registry_error").inc()
            log.warning("webhooks not queued: endpoints unknown", error=str(error))
            return 0
        if not endpoints:
            return 0
        payload = event_payload(
            event,
            message_id,
            occurred_at=occurred_at,
            recipient=recipient,
            provider=provider,
            detail=detail,
        )
        with tracer.start_as_current_span(
            "webhook publish",
            kind=trace.SpanKind.PRODUCER,
            attributes={"messaging.system": "aws_sqs", "limbo.webhook.event": event.value},
        ):
            jobs = [
                DeliveryJob.for_event(owner, e.id, event, payload, occurred_at) for e in endpoints
            ]
            results = await asyncio.gather(*(self._send(job) for job in jobs))
        return sum(results)

    async def _send(self, job: DeliveryJob) -> bool:
        attributes: dict[str, dict[str, Any]] = {}
        inject_context(attributes)
        try:
            await self.queue.send_standard(job.model_dump_json(), attributes=attributes)
        except QueueUnavailable as error:
            _QUEUED.labels(job.event.value, "queue_error").inc()
            log.warning("webhook not queued", error=str(error), endpoint=job.endpoint_id)
            return False
        _QUEUED.labels(job.event.value, "queued").inc()
        return True

    async def _endpoints(self, owner: str) -> list[Endpoint]:
        now = time.monotonic()
        cached = self._cache.get(owner)
        if cached is not None and now - cached[0] < self.cache_seconds:
            return cached[1]
        endpoints = await self.registry.of_owner(owner)
        if len(self._cache) > 10_000:  # many keys: start over rather than grow unbounded
            self._cache.clear()
        self._cache[owner] = (now, endpoints)
        return endpoints


def open_notifier(
    settings: NotifierSettings, table: DynamoTable, *, region: str, endpoint_url: str | None
) -> StatusNotifier | None:
    """The notifier WEBHOOK_QUEUE asks for (None without one), on the status table's
    registry and an SQS client of its own: webhook jobs never wait behind long polls."""
    if settings.webhook_queue is None:
        return None
    client = make_client("sqs", region=region, endpoint_url=endpoint_url, max_pool_connections=4)
    executor = ThreadPoolExecutor(4, thread_name_prefix="webhook-queue")
    log.info("webhooks on", queue=settings.webhook_queue.rsplit("/", 1)[-1])
    return StatusNotifier(
        EndpointRegistry(table), SqsQueue(client, settings.webhook_queue, executor)
    )
