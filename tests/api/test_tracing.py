"""Server spans when nothing exports them: a request's trace context, nothing recorded."""

from __future__ import annotations

import pytest
from opentelemetry import trace
from opentelemetry.sdk.trace import TracerProvider
from opentelemetry.sdk.trace.sampling import ALWAYS_OFF
from starlette.applications import Starlette
from starlette.requests import Request
from starlette.responses import JSONResponse
from starlette.routing import Route
from starlette.testclient import TestClient

from limbo_api.tracing import ContextOnlyServerSpans

CLIENT_TRACE = "0af7651916cd43dd8448eb211c80319c"
CLIENT_SPAN = "b7ad6b7169203331"


async def current_span(request: Request) -> JSONResponse:
    span = trace.get_current_span()
    context = span.get_span_context()
    return JSONResponse(
        {
            "valid": context.is_valid,
            "recording": span.is_recording(),
            "trace_id": format(context.trace_id, "032x"),
            "span_id": format(context.span_id, "016x"),
        }
    )


@pytest.fixture
def client(monkeypatch: pytest.MonkeyPatch) -> TestClient:
    for name in ("OTEL_PYTHON_STARLETTE_EXCLUDED_URLS", "OTEL_PYTHON_EXCLUDED_URLS"):
        monkeypatch.delenv(name, raising=False)
    app = Starlette(routes=[Route("/v1/mail", current_span), Route("/health", current_span)])
    # As setup_telemetry configures a process with no OTLP endpoint.
    tracer = TracerProvider(sampler=ALWAYS_OFF).get_tracer("test")
    app.add_middleware(ContextOnlyServerSpans, tracer=tracer)
    return TestClient(app)


def test_a_request_gets_a_new_trace_that_is_not_recorded(client: TestClient) -> None:
    first = client.get("/v1/mail").json()
    second = client.get("/v1/mail").json()
    assert first["valid"] and not first["recording"]
    assert first["trace_id"] != second["trace_id"], "one trace per request"


def test_a_clients_trace_context_is_continued(client: TestClient) -> None:
    answer = client.get(
        "/v1/mail", headers={"traceparent": f"00-{CLIENT_TRACE}-{CLIENT_SPAN}-01"}
    ).json()
    assert answer["trace_id"] == CLIENT_TRACE
    assert answer["span_id"] != CLIENT_SPAN, "a span of the API's own, child of the client's"
    assert not answer["recording"]


def test_probes_get_no_span(client: TestClient) -> None:
    assert client.get("/health").json()["valid"] is False


def test_the_standard_exclusion_variable_still_wins(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("OTEL_PYTHON_STARLETTE_EXCLUDED_URLS", "/v1/mail")
    app = Starlette(routes=[Route("/v1/mail", current_span), Route("/health", current_span)])
    app.add_middleware(
        ContextOnlyServerSpans, tracer=TracerProvider(sampler=ALWAYS_OFF).get_tracer("test")
    )
    client = TestClient(app)
    assert client.get("/v1/mail").json()["valid"] is False
    assert client.get("/health").json()["valid"] is True
