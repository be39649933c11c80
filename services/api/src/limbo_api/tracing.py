"""The API's server spans: opentelemetry-instrumentation-starlette, minus the noise.

When nothing exports spans (no OTLP endpoint), the instrumentation's per-request work
(attributes, metrics, its send and receive wrappers) would go nowhere; a request then
gets only its trace context (:class:`ContextOnlyServerSpans`), so log lines still carry
ids and a client's trace still reaches the queue.
"""

from __future__ import annotations

import os
from typing import Any, cast

from opentelemetry import propagate, trace
from opentelemetry.instrumentation.asgi import OpenTelemetryMiddleware, asgi_getter
from opentelemetry.instrumentation.starlette import StarletteInstrumentor
from opentelemetry.trace import SpanKind, Tracer
from opentelemetry.util.http import ExcludeList, get_excluded_urls, parse_excluded_urls
from starlette.applications import Starlette
from starlette.types import ASGIApp, Receive, Scope, Send

from limbo_shared.propagation import TRACE_HEADER_LIMITS, within_trace_limits

__all__ = ["UNTRACED_PATHS", "BoundedTraceHeaders", "ContextOnlyServerSpans", "instrument_app"]

_TRACE_HEADERS = frozenset(name.encode() for name in TRACE_HEADER_LIMITS)

# Probes and scrapes arrive every few seconds per pod and would bury the mail traces;
# the standard OTEL_PYTHON_(STARLETTE_)EXCLUDED_URLS still wins when set.
UNTRACED_PATHS = "/(health|ready|metrics)$"


def _excluded_by_env() -> str | None:
    return os.environ.get("OTEL_PYTHON_STARLETTE_EXCLUDED_URLS") or os.environ.get(
        "OTEL_PYTHON_EXCLUDED_URLS"
    )


def instrument_app(app: Starlette, *, recorded: bool = True) -> None:
    """Server spans for ``app``; ``recorded=False`` when no exporter would take them."""
    if not recorded:
        app.add_middleware(ContextOnlyServerSpans)
        return
    StarletteInstrumentor.instrument_app(app)
    excluded_by_env = _excluded_by_env()
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


class ContextOnlyServerSpans:
    """A request's span context, made as cheaply as the SDK allows: the client's
    propagated context is read only when one of the propagators' headers is there, and
    nothing else about the request is looked at. Paths excluded from tracing (the same
    variables, matched against the path) get no span, as with the instrumentation."""

    def __init__(self, app: ASGIApp, tracer: Tracer | None = None) -> None:
        self.app = app
        self._tracer = tracer or trace.get_tracer("limbo.api")
        self._fields = frozenset(
            field.lower().encode() for field in propagate.get_global_textmap().fields
        )
        excluded = _excluded_by_env()
        self._excluded: ExcludeList = (
            get_excluded_urls("STARLETTE") if excluded else parse_excluded_urls(UNTRACED_PATHS)
        )

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] != "http" or self._excluded.url_disabled(scope["path"]):
            await self.app(scope, receive, send)
            return
        fields = self._fields
        parent = (
            propagate.extract(cast("dict[str, Any]", scope), getter=asgi_getter)
            if any(name in fields for name, _ in scope["headers"])
            else None
        )
        with self._tracer.start_as_current_span(
            scope["method"], context=parent, kind=SpanKind.SERVER
        ):
            await self.app(scope, receive, send)
