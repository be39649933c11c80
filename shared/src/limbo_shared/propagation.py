"""W3C trace context carried in SQS message attributes.

SQS carries only X-Ray natively, and the boto3sqs instrumentation keeps consumer spans
in a global dict; limbo writes ``traceparent``/``tracestate`` as string attributes on
publish and reads them back on receipt, which is all the queue hop needs.
"""

from __future__ import annotations

from collections.abc import Mapping, MutableMapping
from typing import Any

from opentelemetry import propagate
from opentelemetry.context import Context
from opentelemetry.propagators.textmap import Getter, Setter

from .queue import MAX_MESSAGE_ATTRIBUTES

__all__ = [
    "MAX_MESSAGE_ATTRIBUTES",
    "TRACE_HEADER_LIMITS",
    "extract_context",
    "inject_context",
    "within_trace_limits",
]

# Bytes a propagation field may take, whoever wrote it (a client's header, or the
# context it left behind). W3C asks carriers to keep at least 512 bytes of tracestate;
# baggage gets what is left of the room the publisher keeps beside each body (4 KiB),
# so a message with the largest context still fits in one SQS message.
TRACE_HEADER_LIMITS = {"traceparent": 128, "tracestate": 512, "baggage": 2048}
# Any other field a configured propagator writes.
_OTHER_FIELD_LIMIT = 256


def within_trace_limits(name: str, value: str | bytes) -> bool:
    return len(value) <= TRACE_HEADER_LIMITS.get(name.lower(), _OTHER_FIELD_LIMIT)


SqsAttributes = MutableMapping[str, dict[str, Any]]


class _AttributeSetter(Setter[SqsAttributes]):
    def set(self, carrier: SqsAttributes, key: str, value: str) -> None:
        if key not in carrier and len(carrier) >= MAX_MESSAGE_ATTRIBUTES:
            # Dropping the context loses a trace link; exceeding the limit loses the mail.
            return
        if not within_trace_limits(key, value.encode()):
            return  # same trade: an oversize field is dropped, never the message
        carrier[key] = {"DataType": "String", "StringValue": value}


class _AttributeGetter(Getter[Mapping[str, Mapping[str, Any]]]):
    def get(self, carrier: Mapping[str, Mapping[str, Any]], key: str) -> list[str] | None:
        attribute = carrier.get(key)
        if not attribute:
            return None
        value = attribute.get("StringValue")
        return [value] if isinstance(value, str) else None

    def keys(self, carrier: Mapping[str, Mapping[str, Any]]) -> list[str]:
        return list(carrier.keys())


_SETTER = _AttributeSetter()
_GETTER = _AttributeGetter()


def inject_context(attributes: SqsAttributes, context: Context | None = None) -> None:
    """Write the current (or given) trace context into SQS message attributes."""
    propagate.inject(attributes, context=context, setter=_SETTER)


def extract_context(attributes: Mapping[str, Mapping[str, Any]] | None) -> Context:
    """The producer's context from received SQS message attributes (empty if absent)."""
    return propagate.extract(attributes or {}, getter=_GETTER)
