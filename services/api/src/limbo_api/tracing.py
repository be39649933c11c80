"""The API's server spans: opentelemetry-instrumentation-starlette, minus the noise."""

from __future__ import annotations

import os

from opentelemetry.instrumentation.asgi import OpenTelemetryMiddleware
from opentelemetry.instrumentation.starlette import StarletteInstrumentor
from starlette.applications import Starlette

__all__ = ["UNTRACED_PATHS", "instrument_app"]

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
