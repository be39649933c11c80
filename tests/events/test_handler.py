"""The events handler in-process against moto's DynamoDB: what one queue message does to
the store, and the span it leaves in the message's trace."""

from __future__ import annotations

import json
import time
import uuid
from collections.abc import AsyncIterator, Sequence
from concurrent.futures import ThreadPoolExecutor
from typing import Any

import pytest
from opentelemetry import trace
from opentelemetry.sdk.trace import ReadableSpan, TracerProvider
from opentelemetry.sdk.trace.export import SimpleSpanProcessor, SpanExporter, SpanExportResult

from limbo_devtools.local_aws import LocalAws
from limbo_devtools.mailgun_webhooks import webhook
from limbo_events.handler import EventsHandler
from limbo_shared.aws import make_client
from limbo_shared.events import MailgunEventSource, SesEventSource, SnsVerifier
from limbo_shared.propagation import inject_context
from limbo_shared.queue import ReceivedMessage, SqsQueue
from limbo_shared.schema import MailRequest, QueuedMail
from limbo_shared.store import DeliveryOutcomes, MessageStore, Suppressions, open_table
from limbo_shared.webhooks import DeliveryJob, EndpointRegistry, EventType, StatusNotifier
from limbo_shared.worker import DeadLetter, Done

TOPIC = "arn:aws:sns:us-east-1:123456789012:limbo-ses-events"


class Collected(SpanExporter):
    def __init__(self) -> None:
        self.spans: list[ReadableSpan] = []

    def export(self, spans: Sequence[ReadableSpan]) -> SpanExportResult:
        self.spans += spans
        return SpanExportResult.SUCCESS


@pytest.fixture(scope="module")
def exported() -> Collected:
    collected = Collected()
    provider = trace.get_tracer_provider()
    assert isinstance(provider, TracerProvider)  # tests/conftest.py installs one
    provider.add_span_processor(SimpleSpanProcessor(collected))
    return collected


@pytest.fixture
async def handler(tracked_aws: LocalAws) -> AsyncIterator[tuple[EventsHandler, MessageStore]]:
    assert tracked_aws.status_table is not None
    table = open_table(
        tracked_aws.status_table,
        region=tracked_aws.region,
        endpoint_url=tracked_aws.endpoint,
        threads=4,
    )
    messages = MessageStore(table, ttl_days=30)
    handler = EventsHandler(
        queue_name="limbo-events",
        sources={
            "mailgun": MailgunEventSource(),
            "ses": SesEventSource(SnsVerifier(TOPIC, verify_signatures=False)),
        },
        messages=messages,
        outcomes=DeliveryOutcomes(table, ttl_days=30),
        suppressions=Suppressions(table),
        retry_seconds=5,
    )
    yield handler, messages
    await handler.aclose()  # closes the table too


def received(body: dict[str, Any], attributes: dict[str, Any]) -> ReceivedMessage:
    return ReceivedMessage(uuid.uuid4().hex, "receipt", json.dumps(body), {}, attributes)


async def test_an_event_applies_and_its_span_joins_the_messages_trace(
    handler: tuple[EventsHandler, MessageStore], exported: Collected
) -> None:
    events, messages = handler
    tracer = trace.get_tracer("test")
    mail = QueuedMail(
        id=str(uuid.uuid4()),
        owner="alice",
        submitted_at=time.time(),
        mail=MailRequest.model_validate(
            {"from": "a@example.com", "to": ["b@example.com"], "subject": "S", "message": "M"}
        ),
    )
    with tracer.start_as_current_span("submission") as submission:
        await messages.record_queued(mail)
    with tracer.start_as_current_span("webhook") as producer:
        attributes = {"limbo_event_source": {"DataType": "String", "StringValue": "mailgun"}}
        inject_context(attributes)
    body = webhook(
        "k", event="failed", severity="permanent", recipient="b@example.com", limbo_id=mail.id
    )
    assert isinstance(await events.handle(received(body, attributes)), Done)
    assert await events.suppressions.get("alice", "B@example.com") is not None
    [span] = [s for s in exported.spans if s.name == "process limbo-events"]
    assert span.kind is trace.SpanKind.CONSUMER
    assert span.context.trace_id == submission.get_span_context().trace_id
    assert [link.context.span_id for link in span.links] == [producer.get_span_context().span_id]
    assert span.attributes is not None
    assert span.attributes["limbo.event.outcome"] == "bounced"
    assert "b@example.com" not in json.dumps(dict(span.attributes))


async def test_an_unknown_source_or_a_foreign_topic_is_dead_lettered_unapplied(
    handler: tuple[EventsHandler, MessageStore],
) -> None:
    events, _ = handler
    unknown = received({}, {"limbo_event_source": {"DataType": "String", "StringValue": "x"}})
    assert isinstance(await events.handle(unknown), DeadLetter)
    foreign = {"Type": "Notification", "TopicArn": "arn:aws:sns:us-east-1:1:other", "Message": "{}"}
    assert isinstance(await events.handle(received(foreign, {})), DeadLetter)


async def test_an_event_for_an_unknown_message_is_done_and_changes_nothing(
    handler: tuple[EventsHandler, MessageStore],
) -> None:
    events, _ = handler
    unknown = str(uuid.uuid4())
    body = webhook("k", event="complained", recipient="b@example.com", limbo_id=unknown)
    source = {"limbo_event_source": {"StringValue": "mailgun"}}
    assert isinstance(await events.handle(received(body, source)), Done)
    assert await events.outcomes.get(unknown) == []


async def test_a_changed_outcome_is_told_to_webhooks_once(tracked_aws: LocalAws) -> None:
    assert tracked_aws.status_table and tracked_aws.webhook_queue_url
    table = open_table(
        tracked_aws.status_table,
        region=tracked_aws.region,
        endpoint_url=tracked_aws.endpoint,
        threads=4,
    )
    client = make_client("sqs", region=tracked_aws.region, endpoint_url=tracked_aws.endpoint)
    webhooks = SqsQueue(client, tracked_aws.webhook_queue_url, ThreadPoolExecutor(2))
    registry = EndpointRegistry(table)
    owner = f"owner-{uuid.uuid4().hex[:8]}"
    endpoint = await registry.create(owner, "https://hooks.example.com/x", tuple(EventType))
    messages = MessageStore(table, ttl_days=30)
    events = EventsHandler(
        queue_name="limbo-events",
        sources={"mailgun": MailgunEventSource()},
        messages=messages,
        outcomes=DeliveryOutcomes(table, ttl_days=30),
        suppressions=Suppressions(table),
        retry_seconds=5,
        notifier=StatusNotifier(registry, webhooks, cache_seconds=0),
    )
    mail = QueuedMail(
        id=str(uuid.uuid4()),
        owner=owner,
        submitted_at=time.time(),
        mail=MailRequest.model_validate(
            {"from": "a@example.com", "to": ["b@example.com"], "subject": "S", "message": "M"}
        ),
    )
    await messages.record_queued(mail)
    source = {"limbo_event_source": {"StringValue": "mailgun"}}
    delivered = webhook("k", event="delivered", recipient="b@example.com", limbo_id=mail.id)
    bounced = webhook(
        "k", event="failed", severity="permanent", recipient="b@example.com", limbo_id=mail.id
    )
    for body in (delivered, delivered, bounced, delivered):  # a duplicate, then a late one
        assert isinstance(await events.handle(received(body, source)), Done)

    told: list[dict[str, Any]] = []
    for _ in range(5):
        for message in await webhooks.receive(max_messages=10, wait_seconds=1):
            job = DeliveryJob.model_validate_json(message.body)
            if job.owner == owner:
                assert job.endpoint_id == endpoint.id
                told.append(json.loads(job.body))
    await events.aclose()
    assert [(t["type"], t["data"]["recipient"], t["data"]["provider"]) for t in told] == [
        ("email.delivered", "b@example.com", "mailgun"),
        ("email.bounced", "b@example.com", "mailgun"),
    ]
    assert all(t["data"]["message_id"] == mail.id for t in told)
