"""The API's server spans: opentelemetry-instrumentation-starlette, minus the noise."""

from __future__ import annotations

import os

from opentelemetry.instrumentation.asgi import OpenTelemetryMiddleware
from opentelemetry.instrumentation.starlette import StarletteInstrumentor
from starlette.applications import Starlette
from starlette.types import ASGIApp, Receive, Scope, Send

from limbo_shared.propagation import TRACE_HEADER_LIMITS, within_trace_limits

__all__ = ["UNTRACED_PATHS", "BoundedTraceHeaders", "instrument_app"]

_TRACE_HEADERS = frozenset(name.encode() for name in TRACE_HEADER_LIMITS)

# Probes and scrapes arrive every few seconds per pod and would bury the mail traces;
# the standard OTEL_PYTHON_(STARLETTE_)EXCLUDED_URLS still wins when set.
UNTRACED_PATHS = "/(health|ready|metrics)$"


def instrument_app(app: Starlette) -> None:
    StarletteInstrumentor.instrument_app(app)
    excluded_by_env = os.environ.get("OTEL_PYTHON_STARLETTE_EXCLUDED_URLS") or os.environ.get(
        "OTEL_PYTHON_EXCLUDED_URLS"
    )
    for middleware in app.user_middleware:
        factory: object = middleware.cls
        if factory is OpenTelemetryMiddleware:
            # ASGI's per-message "http send"/"http receive" spans are 3 of every request's
            # spans and say nothing a JSON API's SERVER span does not.
            middleware.kwargs["exclude_spans"] = ["receive", "send"]
            if not excluded_by_env:
                middleware.kwargs["excluded_urls"] = UNTRACED_PATHS


class BoundedTraceHeaders:
    """Drops a client's oversize ``traceparent``, ``tracestate`` or ``baggage`` header
    before tracing reads it: the request goes on untraced by the client's context rather
    than carrying kilobytes of it into spans and onto the queue (see propagation.py)."""

    def __init__(self, app: ASGIApp) -> None:
        self.app = app

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] == "http":
            headers = scope["headers"]
            if any(
                name in _TRACE_HEADERS and not within_trace_limits(name.decode(), value)
                for name, value in headers
            ):
                scope = {
                    **scope,
                    "headers": [
                        (name, value)
                        for name, value in headers
                        if name not in _TRACE_HEADERS or within_trace_limits(name.decode(), value)
                    ],
                }
        await self.app(scope, receive, send)
