"""The handler's decisions with in-process fakes: retries go back on the queue delayed,
a slow endpoint holds at most its share of the worker, disabled endpoints get nothing."""

from __future__ import annotations

import asyncio
import time
from typing import Any, cast

from prometheus_client import REGISTRY

from limbo_shared.queue import ReceivedMessage
from limbo_shared.webhooks import (
    Attempt,
    AttemptLog,
    DeliveryJob,
    Endpoint,
    EndpointRegistry,
    EventType,
    event_payload,
)
from limbo_shared.worker.consumer import Done
from limbo_webhooks.handler import WebhookHandler
from limbo_webhooks.settings import WebhookSettings
from limbo_webhooks.transport import Deliverer


class FakeRegistry:
    def __init__(self, *endpoints: Endpoint) -> None:
        self.endpoints = {e.id: e for e in endpoints}
        self.logs: dict[str, AttemptLog] = {}

    async def get(self, owner: str, endpoint_id: str) -> Endpoint | None:
        return self.endpoints.get(endpoint_id)

    async def record_attempt(self, endpoint_id: str, attempt: Attempt) -> AttemptLog:
        old = self.logs.get(endpoint_id, AttemptLog())
        failing = None if attempt.outcome == "ok" else (old.failing_since or attempt.at)
        self.logs[endpoint_id] = AttemptLog((attempt, *old.attempts), failing)
        return self.logs[endpoint_id]

    async def disable(self, owner: str, endpoint_id: str, reason: str) -> Endpoint:
        from dataclasses import replace

        self.endpoints[endpoint_id] = replace(
            self.endpoints[endpoint_id], disabled_at=time.time(), disabled_reason=reason
        )
        return self.endpoints[endpoint_id]


class FakeQueue:
    def __init__(self) -> None:
        self.sent: list[tuple[DeliveryJob, int]] = []

    async def send_standard(
        self, body: str, *, delay_seconds: int = 0, attributes: Any = None
    ) -> str:
        self.sent.append((DeliveryJob.model_validate_json(body), delay_seconds))
        return "id"


class FakeDeliverer:
    """Answers with ``status``; attempts to ``hold`` endpoints wait until released."""

    def __init__(self, status: int = 204, hold: str | None = None) -> None:
        self.status = status
        self.hold = hold
        self.release = asyncio.Event()
        self.calls: list[str] = []

    async def deliver(self, endpoint: Endpoint, job: DeliveryJob) -> Attempt:
        self.calls.append(endpoint.id)
        if endpoint.id == self.hold:
            await self.release.wait()
        outcome = "ok" if self.status < 300 else "http_error"
        return Attempt(time.time(), self.status, 1.0, outcome, job.webhook_id)


def _endpoint(endpoint_id: str) -> Endpoint:
    return Endpoint(endpoint_id, "https://x.example.com", (EventType.SENT,), "whsec_AAAA", 0.0)


def _message(job: DeliveryJob) -> ReceivedMessage:
    return ReceivedMessage("m", "r", job.model_dump_json(), {}, {})


def _job(endpoint_id: str, **changes: Any) -> DeliveryJob:
    payload = event_payload(EventType.SENT, "m-1", occurred_at=time.time())
    job = DeliveryJob.for_event("alice", endpoint_id, EventType.SENT, payload, time.time())
    return job.model_copy(update=changes)


def _handler(
    registry: FakeRegistry, deliverer: FakeDeliverer, **settings: Any
) -> tuple[WebhookHandler, FakeQueue]:
    queue = FakeQueue()
    config = WebhookSettings(
        queue="https://sqs.us-east-1.amazonaws.com/1/hooks",
        region="us-east-1",
        status_table="limbo-status",
        **settings,
    )
    handler = WebhookHandler(
        config, cast(EndpointRegistry, registry), queue, cast(Deliverer, deliverer)
    )
    return handler, queue


def _count(name: str, **labels: str) -> float:
    return REGISTRY.get_sample_value(name, labels) or 0.0


async def test_a_failure_goes_back_on_the_queue_with_the_next_attempt_and_its_delay() -> None:
    handler, queue = _handler(FakeRegistry(_endpoint("ep_a")), FakeDeliverer(status=503))
    job = _job("ep_a")
    before = _count("limbo_webhook_attempts_total", outcome="http_error")
    assert await handler.handle(_message(job)) == Done("retry_scheduled")
    assert _count("limbo_webhook_attempts_total", outcome="http_error") == before + 1
    [(retry, delay)] = queue.sent
    assert retry.attempt == 1
    assert 4 <= delay <= 6  # WEBHOOK_RETRY_BASE=5 s, jittered
    assert retry.due_at - time.time() <= 6
    assert (retry.webhook_id, retry.body) == (job.webhook_id, job.body)  # the same webhook


async def test_a_job_not_yet_due_hops_without_an_attempt() -> None:
    deliverer = FakeDeliverer()
    handler, queue = _handler(FakeRegistry(_endpoint("ep_a")), deliverer)
    due = time.time() + 3 * 3600
    assert await handler.handle(_message(_job("ep_a", due_at=due))) == Done("hop")
    assert deliverer.calls == []
    assert queue.sent[0][1] == 900 and queue.sent[0][0].due_at == due


async def test_an_old_webhook_is_given_up() -> None:
    handler, queue = _handler(
        FakeRegistry(_endpoint("ep_a")), FakeDeliverer(status=500), webhook_retry_for=60
    )
    job = _job("ep_a", created_at=time.time() - 61, attempt=7)
    assert await handler.handle(_message(job)) == Done("gave_up")
    assert queue.sent == []


async def test_failing_past_the_window_disables_the_endpoint() -> None:
    registry = FakeRegistry(_endpoint("ep_a"))
    registry.logs["ep_a"] = AttemptLog(failing_since=time.time() - 100)
    handler, queue = _handler(registry, FakeDeliverer(status=500), webhook_disable_after=50)
    assert await handler.handle(_message(_job("ep_a"))) == Done("endpoint_disabled")
    assert not registry.endpoints["ep_a"].enabled
    assert queue.sent == []
    # Jobs still queued for it are dropped without an attempt.
    deliverer = FakeDeliverer()
    handler, _ = _handler(registry, deliverer)
    assert await handler.handle(_message(_job("ep_a"))) == Done("endpoint_disabled")
    assert deliverer.calls == []


async def test_a_slow_endpoint_holds_only_its_share_of_the_worker() -> None:
    deliverer = FakeDeliverer(hold="ep_slow")
    handler, queue = _handler(
        FakeRegistry(_endpoint("ep_slow"), _endpoint("ep_fast")),
        deliverer,
        webhook_endpoint_concurrency=2,
    )
    held = [asyncio.create_task(handler.handle(_message(_job("ep_slow")))) for _ in range(2)]
    await asyncio.sleep(0.05)
    # A third job for the slow endpoint waits on the queue instead of taking a slot...
    assert await handler.handle(_message(_job("ep_slow"))) == Done("endpoint_busy")
    assert queue.sent[-1][1] == 5
    # ...and another endpoint's webhook goes out at once.
    lag_before = _count("limbo_webhook_delivery_lag_seconds_count")
    fast = await asyncio.wait_for(handler.handle(_message(_job("ep_fast"))), 1)
    assert fast == Done("delivered")
    assert _count("limbo_webhook_delivery_lag_seconds_count") == lag_before + 1
    deliverer.release.set()
    assert [await task for task in held] == [Done("delivered")] * 2
