"""The tracer of a process that exports nothing: ids and context, no recording."""

from __future__ import annotations

from opentelemetry import trace
from opentelemetry.propagate import inject
from opentelemetry.trace import SpanContext, TraceFlags

from limbo_shared.unrecorded import UnrecordedTracerProvider

TRACER = UnrecordedTracerProvider().get_tracer("limbo.test")


def test_a_span_records_nothing_but_has_ids() -> None:
    span = TRACER.start_span("publish")
    assert not span.is_recording()
    context = span.get_span_context()
    assert context.is_valid and not context.is_remote


def test_a_new_trace_is_marked_sampled_so_a_process_downstream_that_exports_records_it() -> None:
    with TRACER.start_as_current_span("POST /v1/mail") as span:
        carrier: dict[str, str] = {}
        inject(carrier)
    context = span.get_span_context()
    assert carrier["traceparent"] == (f"00-{context.trace_id:032x}-{context.span_id:016x}-01")


def test_a_child_keeps_its_parents_trace_and_flags_with_an_id_of_its_own() -> None:
    for flags in (TraceFlags.DEFAULT, TraceFlags.SAMPLED):
        parent = SpanContext(0x1234, 0x5678, is_remote=True, trace_flags=TraceFlags(flags))
        with (
            trace.use_span(trace.NonRecordingSpan(parent)),
            TRACER.start_as_current_span("child") as child,
        ):
            context = child.get_span_context()
        assert context.trace_id == 0x1234
        assert context.span_id not in (0x5678, 0)
        assert context.trace_flags == flags


def test_spans_in_a_row_get_different_ids() -> None:
    first, second = TRACER.start_span("a"), TRACER.start_span("b")
    assert first.get_span_context().trace_id != second.get_span_context().trace_id
    assert first.get_span_context().span_id != second.get_span_context().span_id
