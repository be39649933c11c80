"""Trace context crosses the queue in message attributes."""

from __future__ import annotations

from typing import Any

from opentelemetry import trace
from opentelemetry.sdk.trace import TracerProvider

from limbo_shared.propagation import MAX_MESSAGE_ATTRIBUTES, extract_context, inject_context

tracer = TracerProvider().get_tracer("test")


def test_injected_context_is_extracted_as_the_same_span() -> None:
    attributes: dict[str, dict[str, Any]] = {}
    with tracer.start_as_current_span("producer") as span:
        inject_context(attributes)
        expected = span.get_span_context()
    assert attributes["traceparent"]["DataType"] == "String"
    extracted = trace.get_current_span(extract_context(attributes)).get_span_context()
    assert extracted.trace_id == expected.trace_id
    assert extracted.span_id == expected.span_id
    assert extracted.is_remote


def test_missing_attributes_give_an_empty_context() -> None:
    assert not trace.get_current_span(extract_context(None)).get_span_context().is_valid
    assert not trace.get_current_span(extract_context({})).get_span_context().is_valid


def test_attribute_limit_is_respected() -> None:
    attributes = {
        f"a{i}": {"DataType": "String", "StringValue": "x"} for i in range(MAX_MESSAGE_ATTRIBUTES)
    }
    with tracer.start_as_current_span("producer"):
        inject_context(attributes)
    assert len(attributes) == MAX_MESSAGE_ATTRIBUTES
    assert "traceparent" not in attributes
