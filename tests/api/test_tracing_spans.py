"""The API traces each request with one server span, without per-event child spans."""

from __future__ import annotations

from opentelemetry.instrumentation.asgi import OpenTelemetryMiddleware
from starlette.applications import Starlette
from starlette.middleware import Middleware

from limbo_api.app import _without_asgi_event_spans


def test_asgi_receive_and_send_spans_are_excluded() -> None:
    app = Starlette(middleware=[Middleware(OpenTelemetryMiddleware)])
    _without_asgi_event_spans(app)
    entry = app.user_middleware[0]
    assert entry.kwargs["exclude_spans"] == ["receive", "send"]
