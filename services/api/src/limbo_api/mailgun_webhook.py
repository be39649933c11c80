"""``POST /v1/events/mailgun``: verify a Mailgun webhook, queue it, answer at once.

Open to the internet (no API key): the signature is the authentication. A webhook is
refused (and changes nothing) when unsigned (401), forged, stale or replayed (403).
The verified body goes to the events queue as it came; ``limbo-events`` applies it.
"""

from __future__ import annotations

import asyncio
import contextlib

from opentelemetry import trace
from opentelemetry.trace import SpanKind
from starlette.requests import Request
from starlette.responses import JSONResponse, Response

from limbo_shared.events import (
    EVENT_SOURCE_ATTRIBUTE,
    EventRejected,
    MailgunEventSource,
    verify_mailgun,
)
from limbo_shared.http import problem
from limbo_shared.logs import get_logger
from limbo_shared.propagation import inject_context
from limbo_shared.queue import QueueUnavailable, SqsQueue
from limbo_shared.store import StoreUnavailable, WebhookTokens

from .metrics import WEBHOOKS

__all__ = ["MAILGUN_WEBHOOK_PATH", "MailgunWebhook"]

log = get_logger("limbo.api")
tracer = trace.get_tracer("limbo.api")

MAILGUN_WEBHOOK_PATH = "/v1/events/mailgun"
# Mailgun's webhook bodies are a few kilobytes.
MAX_WEBHOOK_BYTES = 256 * 1024


class MailgunWebhook:
    def __init__(
        self,
        *,
        signing_key: str,
        tolerance: float,
        tokens: WebhookTokens,
        events: SqsQueue,
        read_timeout: float,
    ) -> None:
        self._key = signing_key
        self._tolerance = tolerance
        self._tokens = tokens
        self._events = events
        self._read_timeout = read_timeout
        self._source = MailgunEventSource()

    async def handle(self, request: Request) -> Response:
        try:
            async with asyncio.timeout(self._read_timeout):
                body = await request.body()
        except TimeoutError:
            return problem(408, "the body did not arrive in time", message="refused")
        if len(body) > MAX_WEBHOOK_BYTES:
            return problem(413, f"webhook body over {MAX_WEBHOOK_BYTES} bytes", message="refused")
        try:
            signature = verify_mailgun(body, self._key, tolerance=self._tolerance)
            events = self._source.parse(body.decode("utf-8"))
        except (EventRejected, UnicodeDecodeError) as error:
            reason = error.reason if isinstance(error, EventRejected) else "not UTF-8"
            status = error.status if isinstance(error, EventRejected) else 400
            WEBHOOKS.labels("mailgun", "refused").inc()
            log.warning("webhook refused", source="mailgun", reason=reason)
            return problem(status, reason, message="refused")
        try:
            if not await self._tokens.first_use(
                "mailgun", signature.token, keep_seconds=2 * self._tolerance
            ):
                WEBHOOKS.labels("mailgun", "replayed").inc()
                log.warning("webhook refused", source="mailgun", reason="replayed token")
                return problem(403, "this webhook was received before (replay)", message="refused")
            if not events:
                WEBHOOKS.labels("mailgun", "ignored").inc()
                return JSONResponse({"Message": "ignored"})
            with tracer.start_as_current_span(
                f"send {self._events.name}",
                kind=SpanKind.PRODUCER,
                attributes={
                    "messaging.system": "aws_sqs",
                    "messaging.destination.name": self._events.name,
                    "messaging.operation.name": "send",
                    "messaging.operation.type": "send",
                    "limbo.message.id": events[0].message_id,
                },
            ):
                attributes = {
                    EVENT_SOURCE_ATTRIBUTE: {"DataType": "String", "StringValue": "mailgun"}
                }
                inject_context(attributes)
                await self._events.send_standard(body.decode("utf-8"), attributes=attributes)
        except (StoreUnavailable, QueueUnavailable) as error:
            # Mailgun retries a webhook that got no 2xx; the retry must not look like a replay.
            await self._forget(signature.token)
            WEBHOOKS.labels("mailgun", "unavailable").inc()
            log.warning("webhook not queued", source="mailgun", error=str(error))
            return problem(503, "retry later", headers={"Retry-After": "5"}, message="unavailable")
        WEBHOOKS.labels("mailgun", "queued").inc()
        return JSONResponse({"Message": "queued"})

    async def _forget(self, token: str) -> None:
        with contextlib.suppress(StoreUnavailable):
            await self._tokens.forget("mailgun", token)
