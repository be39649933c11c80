"""The events handler: one queue message (an SNS envelope or a Mailgun webhook) applied.

For each recipient of each event: the outcome is written beside the message's record
(never moving backwards), a hard bounce, complaint or unsubscribe suppresses the address
for the message's owner, and the lag from the provider's event time is observed. The
span joins the message's trace (its record keeps the submission's traceparent) and
links to whoever queued the event.
"""

from __future__ import annotations

import asyncio
import time

from opentelemetry import propagate, trace
from opentelemetry.context import Context
from opentelemetry.trace import Link, SpanKind, Status, StatusCode

from limbo_shared.events import EVENT_SOURCE_ATTRIBUTE, DeliveryEvent, EventRejected, EventSource
from limbo_shared.logs import bind_message, get_logger
from limbo_shared.propagation import extract_context
from limbo_shared.queue import ReceivedMessage
from limbo_shared.store import (
    DeliveryOutcomes,
    MessageRecord,
    MessageStore,
    StoreUnavailable,
    Suppressions,
)
from limbo_shared.webhooks import EventType, StatusNotifier
from limbo_shared.worker import DeadLetter, Done, Outcome, Retry, Unavailable
from limbo_shared.worker.circuit import Circuit

from .metrics import EVENTS, LAG, REJECTED, SUPPRESSIONS

__all__ = ["EventsHandler"]

log = get_logger("limbo.events")
tracer = trace.get_tracer("limbo.events")

_REASONS = {"bounced": "bounce", "complained": "complaint", "unsubscribed": "unsubscribe"}
# The outcomes webhooks tell (`unsubscribed` is no webhook event: it shows in the status
# and the suppression list).
_WEBHOOK_EVENTS = {
    outcome: EventType(outcome) for outcome in ("delivered", "bounced", "complained", "delayed")
}


class EventsHandler:
    name = "events"

    def __init__(
        self,
        *,
        queue_name: str,
        sources: dict[str, EventSource],
        messages: MessageStore,
        outcomes: DeliveryOutcomes,
        suppressions: Suppressions,
        retry_seconds: float,
        notifier: StatusNotifier | None = None,
    ) -> None:
        self.queue_name = queue_name
        # Webhooks for each recipient outcome that changed (WEBHOOK_QUEUE set).
        self.notifier = notifier
        self.sources = sources
        self.messages = messages
        self.outcomes = outcomes
        self.suppressions = suppressions
        self.retry_seconds = retry_seconds
        # The consumer pauses on it while the store is down, so an outage costs no attempts.
        self.store_circuit = Circuit("store_unavailable", self._probe_store)

    async def _probe_store(self) -> None:
        await self.messages.get("limbo-store-probe")

    def _source_of(self, message: ReceivedMessage) -> str:
        attribute = message.message_attributes.get(EVENT_SOURCE_ATTRIBUTE) or {}
        return str(attribute.get("StringValue") or "ses")

    async def handle(self, message: ReceivedMessage) -> Outcome:
        name = self._source_of(message)
        source = self.sources.get(name)
        if source is None:
            REJECTED.labels(name if name in ("ses", "mailgun") else "other").inc()
            log.warning("event refused", source=name, reason="no such event source configured")
            return DeadLetter(f"no event source {name!r}", "rejected")
        try:
            # Off the loop: the first SNS message fetches the signing certificate.
            events = await asyncio.to_thread(source.parse, message.body)
        except EventRejected as error:
            if error.status >= 500:
                return Retry(error.reason, self.retry_seconds)
            REJECTED.labels(name).inc()
            log.warning("event refused", source=name, reason=error.reason)
            return DeadLetter(error.reason, "rejected")
        try:
            for event in events:
                await self._apply(event, message)
        except StoreUnavailable as error:
            log.warning("event not applied; pausing on the store", source=name, error=str(error))
            return Unavailable(self.store_circuit, "status store unavailable")
        return Done(f"{name}_events")

    async def _apply(self, event: DeliveryEvent, message: ReceivedMessage) -> None:
        with bind_message(message_id=event.message_id):
            record = await self.messages.get(event.message_id)
            if record is None:
                # Expired, or never tracked: there is no owner to suppress for.
                for _ in event.recipients:
                    EVENTS.labels(event.source, event.outcome.value, "unknown_message").inc()
                log.info("event for an unknown message", source=event.source)
                return
            with tracer.start_as_current_span(
                f"process {self.queue_name}",
                context=_message_context(record),
                kind=SpanKind.CONSUMER,
                links=_links(message),
                attributes={
                    "messaging.system": "aws_sqs",
                    "messaging.destination.name": self.queue_name,
                    "messaging.operation.name": "process",
                    "messaging.operation.type": "process",
                    "messaging.message.id": message.message_id,
                    "limbo.message.id": event.message_id,
                    "limbo.event.source": event.source,
                    "limbo.event.outcome": event.outcome.value,
                },
            ) as span:
                try:
                    await self._apply_to(record, event)
                except StoreUnavailable as error:
                    span.set_status(Status(StatusCode.ERROR, str(error)))
                    raise

    async def _apply_to(self, record: MessageRecord, event: DeliveryEvent) -> None:
        for recipient in event.recipients:
            applied = await self.outcomes.apply(event, recipient, created_at=record.created_at)
            EVENTS.labels(
                event.source, event.outcome.value, "applied" if applied else "stale"
            ).inc()
            if event.suppresses:
                # Also when stale: a first attempt may have died between the two writes.
                reason = _REASONS[event.outcome.value]
                added = await self.suppressions.add(
                    record.owner,
                    recipient,
                    reason=reason,
                    source=event.source,
                    detail=event.diagnostic,
                    message_id=event.message_id,
                    keep_existing=True,
                )
                if added:
                    SUPPRESSIONS.labels(event.source, reason).inc()
            if applied:
                LAG.labels(event.source).observe(max(0.0, time.time() - event.occurred_at))
                await self._notify(record, event, recipient)
        log.info(
            "event applied",
            source=event.source,
            outcome=event.outcome.value,
            recipients=len(event.recipients),
        )

    async def _notify(self, record: MessageRecord, event: DeliveryEvent, recipient: str) -> None:
        # Only an outcome that moved: a duplicate or a late event tells nobody twice.
        if self.notifier is None or event.outcome.value not in _WEBHOOK_EVENTS:
            return
        await self.notifier.notify(
            record.owner,
            event.message_id,
            _WEBHOOK_EVENTS[event.outcome.value],
            recipient=recipient,
            provider=event.source,
            detail=event.diagnostic,
            occurred_at=event.occurred_at,
        )

    async def aclose(self) -> None:
        await self.suppressions.aclose()
        await self.messages.aclose()
        self.messages.table.close()


def _message_context(record: MessageRecord) -> Context:
    if record.traceparent is None:
        return Context()
    return propagate.extract({"traceparent": record.traceparent})


def _links(message: ReceivedMessage) -> list[Link]:
    context = trace.get_current_span(extract_context(message.message_attributes)).get_span_context()
    return [Link(context)] if context.is_valid else []
