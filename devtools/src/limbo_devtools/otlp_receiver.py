"""A minimal OTLP/HTTP trace receiver: ``POST /v1/traces`` with protobuf bodies.

The tests point limbo's real processes at it to see exactly what they export, the
tracing benchmark gives the exporters somewhere cheap to send to, and
``limbo-otlp-receiver`` prints each trace as a tree for anyone without a Jaeger at hand.
Only what the standard OTLP exporter sends is handled: protobuf, optionally gzipped.
"""

from __future__ import annotations

import argparse
import gzip
import sys
import threading
import time
from collections.abc import Iterable
from dataclasses import dataclass
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from typing import Any

from opentelemetry.proto.collector.trace.v1.trace_service_pb2 import (
    ExportTraceServiceRequest,
    ExportTraceServiceResponse,
)
from opentelemetry.proto.common.v1.common_pb2 import AnyValue, KeyValue
from opentelemetry.proto.trace.v1.trace_pb2 import Span, Status

__all__ = ["OtlpReceiver", "ReceivedSpan", "format_trace", "main"]


@dataclass(frozen=True)
class ReceivedSpan:
    service: str
    name: str
    kind: str  # SERVER, CLIENT, PRODUCER, CONSUMER, INTERNAL
    trace_id: str  # hex
    span_id: str  # hex
    parent_span_id: str  # hex, "" for a root span
    attributes: dict[str, Any]
    links: tuple[tuple[str, str], ...]  # (trace_id, span_id)
    events: tuple[tuple[str, dict[str, Any]], ...]
    status: str  # UNSET, OK, ERROR
    status_message: str  # the description set with an ERROR status
    start_ns: int
    end_ns: int
    received_at: float  # time.monotonic() when the export arrived


def _value(value: AnyValue) -> Any:
    which = value.WhichOneof("value")
    if which is None:
        return None
    if which == "array_value":
        return [_value(item) for item in value.array_value.values]
    if which == "kvlist_value":
        return _attributes(value.kvlist_value.values)
    return getattr(value, which)


def _attributes(pairs: Iterable[KeyValue]) -> dict[str, Any]:
    return {pair.key: _value(pair.value) for pair in pairs}


def decode(body: bytes, received_at: float) -> list[ReceivedSpan]:
    """The spans of one ExportTraceServiceRequest, flattened with their service name."""
    request = ExportTraceServiceRequest()
    request.ParseFromString(body)
    spans = []
    for resource_spans in request.resource_spans:
        service = str(_attributes(resource_spans.resource.attributes).get("service.name", ""))
        for scope_spans in resource_spans.scope_spans:
            for span in scope_spans.spans:
                spans.append(
                    ReceivedSpan(
                        service=service,
                        name=span.name,
                        kind=Span.SpanKind.Name(span.kind).removeprefix("SPAN_KIND_"),
                        trace_id=span.trace_id.hex(),
                        span_id=span.span_id.hex(),
                        parent_span_id=span.parent_span_id.hex(),
                        attributes=_attributes(span.attributes),
                        links=tuple(
                            (link.trace_id.hex(), link.span_id.hex()) for link in span.links
                        ),
                        events=tuple(
                            (event.name, _attributes(event.attributes)) for event in span.events
                        ),
                        status=Status.StatusCode.Name(span.status.code).removeprefix(
                            "STATUS_CODE_"
                        ),
                        status_message=span.status.message,
                        start_ns=span.start_time_unix_nano,
                        end_ns=span.end_time_unix_nano,
                        received_at=received_at,
                    )
                )
    return spans


class OtlpReceiver:
    """Accepts OTLP/HTTP trace exports on loopback and keeps every span."""

    def __init__(self, host: str = "127.0.0.1", port: int = 0) -> None:
        self._lock = threading.Lock()
        self._spans: list[ReceivedSpan] = []
        receiver = self

        class Handler(BaseHTTPRequestHandler):
            def do_POST(self) -> None:
                if self.path.rstrip("/") != "/v1/traces":
                    self.send_error(404)
                    return
                body = self.rfile.read(int(self.headers.get("Content-Length", "0")))
                if self.headers.get("Content-Encoding", "").lower() == "gzip":
                    body = gzip.decompress(body)
                try:
                    spans = decode(body, time.monotonic())
                except Exception:  # a bad export must get an answer, not kill the thread
                    self.send_error(400, "not an ExportTraceServiceRequest")
                    return
                receiver._add(spans)
                answer = ExportTraceServiceResponse().SerializeToString()
                self.send_response(200)
                self.send_header("Content-Type", "application/x-protobuf")
                self.send_header("Content-Length", str(len(answer)))
                self.end_headers()
                self.wfile.write(answer)

            def log_message(self, format: str, *args: Any) -> None:
                pass  # one line per export would drown the output

        self._server = ThreadingHTTPServer((host, port), Handler)
        self._server.daemon_threads = True
        self._thread = threading.Thread(
            target=self._server.serve_forever, daemon=True, name="otlp-receiver"
        )

    @property
    def endpoint(self) -> str:
        """The value for OTEL_EXPORTER_OTLP_ENDPOINT (the exporter adds /v1/traces)."""
        host, port = self._server.server_address[:2]
        return f"http://{host!s}:{port}"

    def start(self) -> OtlpReceiver:
        self._thread.start()
        return self

    def stop(self) -> None:
        self._server.shutdown()
        self._server.server_close()

    def _add(self, spans: list[ReceivedSpan]) -> None:
        with self._lock:
            self._spans.extend(spans)

    def spans(self) -> list[ReceivedSpan]:
        with self._lock:
            return list(self._spans)

    def traces(self) -> dict[str, list[ReceivedSpan]]:
        traces: dict[str, list[ReceivedSpan]] = {}
        for span in self.spans():
            traces.setdefault(span.trace_id, []).append(span)
        return traces


def format_trace(spans: list[ReceivedSpan]) -> str:
    """One line per span, children indented under their parent, in start order."""
    ids = {span.span_id for span in spans}
    children: dict[str, list[ReceivedSpan]] = {}
    for span in sorted(spans, key=lambda s: s.start_ns):
        # A parent from another trace part not (yet) received shows as a root.
        parent = span.parent_span_id if span.parent_span_id in ids else ""
        children.setdefault(parent, []).append(span)
    start = min((span.start_ns for span in spans), default=0)
    lines: list[str] = []

    def walk(parent: str, depth: int) -> None:
        for span in children.get(parent, []):
            offset = (span.start_ns - start) / 1e6
            duration = (span.end_ns - span.start_ns) / 1e6
            links = f"  links: {len(span.links)}" if span.links else ""
            status = "  ERROR" if span.status == "ERROR" else ""
            lines.append(
                f"{'  ' * depth}{span.name}  [{span.kind}, {span.service}]"
                f"  +{offset:.1f} ms, {duration:.1f} ms{links}{status}"
            )
            walk(span.span_id, depth + 1)

    walk("", 0)
    return "\n".join(lines)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__)
    parser.add_argument("--host", default="127.0.0.1")
    parser.add_argument("--port", type=int, default=4318)
    parser.add_argument(
        "--quiet-seconds",
        type=float,
        default=2.0,
        help="print a trace once no span of it arrived for this long",
    )
    args = parser.parse_args()
    receiver = OtlpReceiver(args.host, args.port).start()
    print(f"OTLP/HTTP receiver on {receiver.endpoint}/v1/traces", flush=True)
    printed: dict[str, int] = {}
    try:
        while True:
            time.sleep(0.5)
            now = time.monotonic()
            for trace_id, spans in receiver.traces().items():
                if printed.get(trace_id) == len(spans):
                    continue
                if now - max(span.received_at for span in spans) < args.quiet_seconds:
                    continue
                again = " (updated)" if trace_id in printed else ""
                print(f"\ntrace {trace_id}{again}\n{format_trace(spans)}", flush=True)
                printed[trace_id] = len(spans)
    except KeyboardInterrupt:
        receiver.stop()
        sys.exit(0)


if __name__ == "__main__":
    main()
