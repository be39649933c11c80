"""The CLIENT span around one call to the sending provider."""

from __future__ import annotations

from contextlib import AbstractContextManager

from opentelemetry import trace
from opentelemetry.trace import Span, SpanKind

from ..provider import Provider

__all__ = ["provider_span"]

tracer = trace.get_tracer("limbo.worker")


def provider_span(provider: Provider, operation: str) -> AbstractContextManager[Span]:
    """``{provider} {operation}`` ("mailgun send", "mailgun lookup"), naming the host."""
    return tracer.start_as_current_span(
        f"{provider.name} {operation}",
        kind=SpanKind.CLIENT,
        attributes={
            "server.address": provider.server_address,
            "limbo.provider": provider.name,
        },
    )
