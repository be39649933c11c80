"""The webhook worker's handler on the shared consumer: one delivery job, one attempt.

Every outcome deletes the received message (``Done``); a retry is the same job sent
back to the queue with its attempt count and ``due_at``, delayed by SQS, so a job's
receive count stays at one and a wait of hours costs no worker anything.
"""

from __future__ import annotations

import asyncio
import time
from collections import Counter as Tally
from typing import Any
from urllib.parse import urlsplit

from opentelemetry import trace
from pydantic import ValidationError

from limbo_shared.logs import get_logger
from limbo_shared.propagation import inject_context
from limbo_shared.queue import QueueUnavailable, ReceivedMessage
from limbo_shared.store.table import ConditionFailed, StoreUnavailable
from limbo_shared.webhooks import Attempt, AttemptLog, DeliveryJob, EndpointRegistry, WebhookQueue
from limbo_shared.worker.consumer import Done, Outcome, Retry

from .metrics import ATTEMPT_SECONDS, ATTEMPTS, DELIVERY_LAG, DISABLED, JOBS
from .schedule import hop_delay, next_due
from .settings import WebhookSettings
from .transport import Deliverer

__all__ = ["WebhookHandler"]

log = get_logger("limbo.webhooks")
tracer = trace.get_tracer("limbo.webhooks")

# A job for an endpoint already at WEBHOOK_ENDPOINT_CONCURRENCY comes back after this.
_BUSY_DELAY = 5
# The registry or the queue did not answer: the message is seen again after this.
_UNAVAILABLE_DELAY = 30.0


class WebhookHandler:
    name = "webhooks"

    def __init__(
        self,
        settings: WebhookSettings,
        registry: EndpointRegistry,
        queue: WebhookQueue,
        deliverer: Deliverer,
    ) -> None:
        self.settings = settings
        self.registry = registry
        self.queue = queue
        self.deliverer = deliverer
        self._in_flight: Tally[str] = Tally()

    async def handle(self, message: ReceivedMessage) -> Outcome:
        try:
            job = DeliveryJob.model_validate_json(message.body)
        except ValidationError:
            log.error("not a webhook delivery job: dropped")
            return self._done("malformed")
        now = time.time()
        if job.due_at > now + 1:
            return await self._requeue(job, hop_delay(job.due_at, now), "hop")
        try:
            endpoint = await self.registry.get(job.owner, job.endpoint_id)
        except StoreUnavailable as error:
            return Retry(f"endpoint registry unavailable: {error}", _UNAVAILABLE_DELAY)
        if endpoint is None:
            return self._done("endpoint_deleted")
        if not endpoint.enabled:
            return self._done("endpoint_disabled")
        if self._in_flight[endpoint.id] >= self.settings.webhook_endpoint_concurrency:
            return await self._requeue(job, _BUSY_DELAY, "endpoint_busy")
        self._in_flight[endpoint.id] += 1
        try:
            with tracer.start_as_current_span(
                "webhook deliver",
                kind=trace.SpanKind.CLIENT,
                attributes={
                    "http.request.method": "POST",
                    # The host only: a URL's path or query may carry the client's token.
                    "server.address": _host(endpoint.url),
                    "limbo.webhook.event": job.event.value,
                    "limbo.webhook.attempt": job.attempt + 1,
                },
            ) as span:
                attempt = await self.deliverer.deliver(endpoint, job)
                span.set_attribute("limbo.webhook.outcome", attempt.outcome)
                if attempt.status_code is not None:
                    span.set_attribute("http.response.status_code", attempt.status_code)
                if attempt.outcome != "ok":
                    span.set_status(trace.Status(trace.StatusCode.ERROR, attempt.outcome))
        finally:
            self._in_flight[endpoint.id] -= 1
            if not self._in_flight[endpoint.id]:
                del self._in_flight[endpoint.id]
        ATTEMPTS.labels(attempt.outcome).inc()
        ATTEMPT_SECONDS.observe(attempt.latency_ms / 1000)
        log.info(
            "webhook attempt",
            endpoint=endpoint.id,
            webhook_event=job.event.value,
            attempt=job.attempt + 1,
            outcome=attempt.outcome,
            status_code=attempt.status_code,
            latency_ms=round(attempt.latency_ms, 1),
        )
        history = await self._record(endpoint.id, attempt)
        if attempt.outcome == "ok":
            DELIVERY_LAG.observe(max(0.0, time.time() - job.occurred_at))
            return self._done("delivered")
        if history is not None and history.failing_since is not None:
            failing_for = attempt.at - history.failing_since
            if failing_for >= self.settings.webhook_disable_after:
                return await self._disable(job, failing_for)
        attempts_made = job.attempt + 1
        due = next_due(
            attempts_made,
            now=time.time(),
            created_at=job.created_at,
            base=self.settings.webhook_retry_base,
            cap=self.settings.webhook_retry_max,
            retry_for=self.settings.webhook_retry_for,
        )
        if due is None:
            log.warning("webhook given up", endpoint=endpoint.id, attempts=attempts_made)
            return self._done("gave_up")
        retry = job.model_copy(update={"attempt": attempts_made, "due_at": due})
        return await self._requeue(retry, hop_delay(due, time.time()), "retry_scheduled")

    async def _record(self, endpoint_id: str, attempt: Attempt) -> AttemptLog | None:
        try:
            return await self.registry.record_attempt(endpoint_id, attempt)
        except (StoreUnavailable, ConditionFailed) as error:
            # The attempt list is for people; the delivery goes on without it.
            log.warning("attempt not recorded", endpoint=endpoint_id, error=str(error))
            return None

    async def _disable(self, job: DeliveryJob, failing_for: float) -> Outcome:
        reason = f"every attempt failed for {_duration(failing_for)}"
        try:
            await self.registry.disable(job.owner, job.endpoint_id, reason)
        except (StoreUnavailable, ConditionFailed) as error:
            return Retry(f"could not disable the endpoint: {error}", _UNAVAILABLE_DELAY)
        DISABLED.inc()
        log.warning("endpoint disabled", endpoint=job.endpoint_id, reason=reason)
        return self._done("endpoint_disabled")

    async def _requeue(self, job: DeliveryJob, delay: int, result: str) -> Outcome:
        attributes: dict[str, dict[str, Any]] = {}
        inject_context(attributes)  # the next attempt stays in the trace of the first
        try:
            await self.queue.send_standard(
                job.model_dump_json(), delay_seconds=delay, attributes=attributes
            )
        except QueueUnavailable as error:
            # Not deleted: SQS shows the original again after the visibility timeout.
            return Retry(f"webhook queue unavailable: {error}", _UNAVAILABLE_DELAY)
        return self._done(result)

    @staticmethod
    def _done(result: str) -> Done:
        JOBS.labels(result).inc()
        return Done(result)

    async def aclose(self) -> None:
        await self.deliverer.aclose()
        # Give in-flight DynamoDB calls of a cancelled attempt a moment to finish.
        await asyncio.sleep(0)
        self.registry.table.close()


def _host(url: str) -> str:
    try:
        return urlsplit(url).hostname or "?"
    except ValueError:
        return "?"


def _duration(seconds: float) -> str:
    if seconds < 120:
        return f"{seconds:.0f} s"
    if seconds < 2 * 3600:
        return f"{seconds / 60:.0f} min"
    if seconds < 2 * 86_400:
        return f"{seconds / 3600:.1f} h"
    return f"{seconds / 86_400:.1f} days"
