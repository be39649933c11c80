"""OpenTelemetry set-up from the standard OTEL_* environment variables only.

With no OTLP endpoint configured nothing would export a span, so none is recorded
(unrecorded.py): each span still gets ids, which go into every log line and travel with
each message, and nothing complains about a missing collector. ``OTEL_SDK_DISABLED=true``
turns all of it off.
"""

from __future__ import annotations

import os
import threading
from collections.abc import Mapping
from typing import Literal

from opentelemetry import trace
from opentelemetry.sdk.resources import SERVICE_NAME, Resource
from opentelemetry.sdk.trace import TracerProvider
from opentelemetry.sdk.trace.export import BatchSpanProcessor, SpanExporter
from opentelemetry.util.types import AttributeValue

from .config import ConfigError
from .queue import SqsQueue
from .unrecorded import UnrecordedTracerProvider

__all__ = ["Telemetry", "messaging_attributes", "setup_telemetry"]

# The semantic conventions' operation types for messaging spans.
OperationType = Literal["create", "send", "receive", "process", "settle"]

_ENDPOINT_VARIABLES = ("OTEL_EXPORTER_OTLP_ENDPOINT", "OTEL_EXPORTER_OTLP_TRACES_ENDPOINT")
_PROTOCOL_VARIABLES = ("OTEL_EXPORTER_OTLP_TRACES_PROTOCOL", "OTEL_EXPORTER_OTLP_PROTOCOL")


class Telemetry:
    """The process's tracer provider and exporter, kept so they can be flushed on shutdown."""

    def __init__(self, provider: TracerProvider | None, exporter: SpanExporter | None) -> None:
        self.provider = provider
        self.exporter = exporter

    @property
    def exporting(self) -> bool:
        return self.exporter is not None

    def shutdown(self, timeout: float = 5.0) -> bool:
        """Export buffered spans (called after the SIGTERM drain); True if all went out.

        An unreachable collector makes the exporter retry for up to its own timeout
        (10 s by default) per batch; bounding the wait keeps the process inside its
        Kubernetes grace period. The flush runs on a daemon thread that exit abandons.
        """
        provider = self.provider
        if provider is None:
            return True

        def flush() -> None:
            provider.force_flush()
            provider.shutdown()

        flusher = threading.Thread(target=flush, name="otel-flush", daemon=True)
        flusher.start()
        flusher.join(timeout)
        return not flusher.is_alive()


def _exporter(environ: Mapping[str, str]) -> SpanExporter:
    variable, protocol = next(
        ((name, environ[name].strip()) for name in _PROTOCOL_VARIABLES if environ.get(name)),
        ("", "http/protobuf"),
    )
    if protocol == "grpc":
        try:
            from opentelemetry.exporter.otlp.proto.grpc.trace_exporter import (
                OTLPSpanExporter as GrpcExporter,
            )
        except ImportError:
            # The images leave the gRPC exporter out (limbo-shared's "grpc" extra).
            raise ConfigError(
                f"{variable} is grpc, but this build has no OTLP gRPC exporter; use "
                "http/protobuf, or build the image with --build-arg EXTRAS=grpc"
            ) from None
        return GrpcExporter()
    if protocol != "http/protobuf":
        raise ConfigError(
            f"{variable} is invalid: {protocol!r} is not supported; use http/protobuf or grpc"
        )
    from opentelemetry.exporter.otlp.proto.http.trace_exporter import OTLPSpanExporter

    return OTLPSpanExporter()


def setup_telemetry(
    default_service_name: str, environ: Mapping[str, str] | None = None
) -> Telemetry:
    """Install the global tracer provider; raise ConfigError for an unusable protocol."""
    environ = os.environ if environ is None else environ
    if environ.get("OTEL_SDK_DISABLED", "").strip().lower() == "true":
        return Telemetry(None, None)
    # Resource.create reads OTEL_RESOURCE_ATTRIBUTES and OTEL_SERVICE_NAME itself;
    # the default only applies when neither names the service.
    resource = Resource.create({})
    if str(resource.attributes.get(SERVICE_NAME, "")).startswith("unknown_service"):
        resource = resource.merge(Resource({SERVICE_NAME: default_service_name}))
    if not any(environ.get(v) for v in _ENDPOINT_VARIABLES):
        trace.set_tracer_provider(UnrecordedTracerProvider())
        return Telemetry(None, None)
    exporter = _exporter(environ)
    # TracerProvider reads OTEL_TRACES_SAMPLER / OTEL_TRACES_SAMPLER_ARG. Its own atexit
    # shutdown is off: Telemetry.shutdown is the one, bounded, flush.
    provider = TracerProvider(resource=resource, shutdown_on_exit=False)
    provider.add_span_processor(BatchSpanProcessor(exporter))
    trace.set_tracer_provider(provider)
    return Telemetry(provider, exporter)


def messaging_attributes(
    queue: SqsQueue,
    operation_name: str,
    operation_type: OperationType,
    extra: Mapping[str, AttributeValue] | None = None,
) -> dict[str, AttributeValue]:
    """The OpenTelemetry messaging attributes of a span about ``queue``.

    ``operation_name`` is the SQS call or limbo's step (``send``, ``receive``,
    ``delete``...), ``operation_type`` its kind in the semantic conventions; ``extra``
    adds attributes (``messaging.message.id`` and the like).
    """
    attributes: dict[str, AttributeValue] = {
        "messaging.system": "aws_sqs",
        "messaging.destination.name": queue.name,
        "aws.sqs.queue.url": queue.url,
        "messaging.operation.name": operation_name,
        "messaging.operation.type": operation_type,
    }
    attributes.update(extra or {})
    return attributes
