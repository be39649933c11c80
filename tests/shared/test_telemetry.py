"""Telemetry set-up from the standard OTEL_* variables, and its flush at shutdown."""

from __future__ import annotations

import json
import os
import subprocess
import sys
import threading
import time
from collections.abc import Iterator

import pytest
from opentelemetry.exporter.otlp.proto.grpc.trace_exporter import (
    OTLPSpanExporter as GrpcExporter,
)
from opentelemetry.exporter.otlp.proto.http.trace_exporter import OTLPSpanExporter

from limbo_devtools.otlp_receiver import OtlpReceiver
from limbo_devtools.processes import START_TIMEOUT, free_port, script
from limbo_shared.config import ConfigError
from limbo_shared.queue import SqsQueue
from limbo_shared.sqs_http import sqs_http_client
from limbo_shared.telemetry import Telemetry, messaging_attributes, setup_telemetry

OTEL_VARIABLES = [name for name in os.environ if name.startswith("OTEL_")]

# A whole process, as limbo's commands start: logging, telemetry, one span, one line.
PROCESS = """
import json
from opentelemetry import trace
from limbo_shared.logs import get_logger, setup_logging
from limbo_shared.telemetry import setup_telemetry

setup_logging("json")
telemetry = setup_telemetry("limbo-probe")
with trace.get_tracer("probe").start_as_current_span("probe work") as span:
    get_logger("probe").info("inside a span")
    recording = span.is_recording()
print(json.dumps({
    "flushed": telemetry.shutdown(timeout=5),
    "exporting": telemetry.exporting,
    "recording": recording,
}))
"""


def run_process(**env: str) -> list[dict[str, object]]:
    clean = {k: v for k, v in os.environ.items() if not k.startswith("OTEL_")}
    result = subprocess.run(
        [sys.executable, "-c", PROCESS],
        env={**clean, **env},
        capture_output=True,
        text=True,
        timeout=START_TIMEOUT,
        check=True,
    )
    assert result.stderr == ""
    return [json.loads(line) for line in result.stdout.splitlines()]


@pytest.fixture
def receiver() -> Iterator[OtlpReceiver]:
    receiver = OtlpReceiver().start()
    yield receiver
    receiver.stop()


@pytest.fixture
def telemetry(monkeypatch: pytest.MonkeyPatch) -> Iterator[list[Telemetry]]:
    """Telemetry objects made in this process, shut down afterwards (they own threads)."""
    for name in OTEL_VARIABLES:
        monkeypatch.delenv(name)
    made: list[Telemetry] = []
    yield made
    for item in made:
        item.shutdown(timeout=1)


def test_without_an_endpoint_spans_have_ids_but_nothing_is_recorded_or_exported() -> None:
    line, result = run_process()
    assert result == {"flushed": True, "exporting": False, "recording": False}
    assert line["event"] == "inside a span"
    assert len(str(line["trace_id"])) == 32, "log lines still carry trace ids"


def test_with_an_endpoint_the_span_reaches_the_collector(receiver: OtlpReceiver) -> None:
    line, result = run_process(OTEL_EXPORTER_OTLP_ENDPOINT=receiver.endpoint)
    assert result == {"flushed": True, "exporting": True, "recording": True}
    [span] = receiver.spans()
    assert (span.name, span.service, span.trace_id) == (
        "probe work",
        "limbo-probe",
        line["trace_id"],
    )


def test_sdk_disabled_exports_nothing_even_with_an_endpoint(receiver: OtlpReceiver) -> None:
    line, result = run_process(
        OTEL_EXPORTER_OTLP_ENDPOINT=receiver.endpoint, OTEL_SDK_DISABLED="TRUE"
    )
    assert result == {"flushed": True, "exporting": False, "recording": False}
    assert "trace_id" not in line, "no SDK, no ids"
    time.sleep(0.3)
    assert receiver.spans() == []


def test_service_name_and_resource_come_from_the_standard_variables(
    telemetry: list[Telemetry],
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    # The resource goes out with exported spans: without an endpoint there is none.
    monkeypatch.setenv("OTEL_EXPORTER_OTLP_ENDPOINT", f"http://127.0.0.1:{free_port()}")
    telemetry.append(setup_telemetry("limbo-api"))
    assert telemetry[-1].provider is not None
    assert telemetry[-1].provider.resource.attributes["service.name"] == "limbo-api"
    monkeypatch.setenv("OTEL_SERVICE_NAME", "api-eu")
    monkeypatch.setenv("OTEL_RESOURCE_ATTRIBUTES", "service.namespace=mail,service.version=1.2")
    telemetry.append(setup_telemetry("limbo-api"))
    assert telemetry[-1].provider is not None
    attributes = telemetry[-1].provider.resource.attributes
    assert (
        attributes["service.name"],
        attributes["service.namespace"],
        attributes["service.version"],
    ) == ("api-eu", "mail", "1.2")


def test_the_sampler_comes_from_the_standard_variable(
    telemetry: list[Telemetry],
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    # With an exporter: without one nothing is recorded whatever the sampler says.
    monkeypatch.setenv("OTEL_EXPORTER_OTLP_ENDPOINT", f"http://127.0.0.1:{free_port()}")
    monkeypatch.setenv("OTEL_TRACES_SAMPLER", "always_off")
    telemetry.append(setup_telemetry("limbo-api"))
    assert telemetry[-1].provider is not None
    span = telemetry[-1].provider.get_tracer("t").start_span("x")
    assert not span.get_span_context().trace_flags.sampled


@pytest.mark.parametrize(
    ("variables", "exporter"),
    [
        ({}, OTLPSpanExporter),
        ({"OTEL_EXPORTER_OTLP_PROTOCOL": "http/protobuf"}, OTLPSpanExporter),
        ({"OTEL_EXPORTER_OTLP_PROTOCOL": "grpc"}, GrpcExporter),
        # The signal-specific variable wins over the general one.
        (
            {
                "OTEL_EXPORTER_OTLP_PROTOCOL": "grpc",
                "OTEL_EXPORTER_OTLP_TRACES_PROTOCOL": "http/protobuf",
            },
            OTLPSpanExporter,
        ),
    ],
)
def test_protocol_selects_the_exporter(
    telemetry: list[Telemetry],
    monkeypatch: pytest.MonkeyPatch,
    variables: dict[str, str],
    exporter: type,
) -> None:
    monkeypatch.setenv("OTEL_EXPORTER_OTLP_ENDPOINT", f"http://127.0.0.1:{free_port()}")
    for name, value in variables.items():
        monkeypatch.setenv(name, value)
    telemetry.append(setup_telemetry("limbo-api"))
    assert type(telemetry[-1].exporter) is exporter


def test_an_unknown_protocol_is_a_configuration_error_naming_the_variable(
    telemetry: list[Telemetry],
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    monkeypatch.setenv("OTEL_EXPORTER_OTLP_ENDPOINT", "http://127.0.0.1:4318")
    monkeypatch.setenv("OTEL_EXPORTER_OTLP_TRACES_PROTOCOL", "http/json")
    with pytest.raises(
        ConfigError,
        match=r"^OTEL_EXPORTER_OTLP_TRACES_PROTOCOL is invalid: "
        r"'http/json' is not supported",
    ):
        setup_telemetry("limbo-api")


def test_grpc_without_the_grpc_exporter_installed_is_a_configuration_error(
    telemetry: list[Telemetry],
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    # As in the images, which leave limbo-shared's "grpc" extra out.
    monkeypatch.setitem(sys.modules, "opentelemetry.exporter.otlp.proto.grpc.trace_exporter", None)
    monkeypatch.setenv("OTEL_EXPORTER_OTLP_ENDPOINT", "http://127.0.0.1:4317")
    monkeypatch.setenv("OTEL_EXPORTER_OTLP_PROTOCOL", "grpc")
    with pytest.raises(
        ConfigError, match=r"^OTEL_EXPORTER_OTLP_PROTOCOL is grpc, but this build has no"
    ):
        setup_telemetry("limbo-api")


def test_the_api_stops_with_one_line_on_an_unknown_protocol() -> None:
    env = {k: v for k, v in os.environ.items() if not k.startswith("OTEL_")}
    env.update(
        QUEUE="http://127.0.0.1:9/123456789012/q.fifo",
        REGION="us-east-1",
        OTEL_EXPORTER_OTLP_ENDPOINT="http://127.0.0.1:4318",
        OTEL_EXPORTER_OTLP_PROTOCOL="http/json",
        LOG_FORMAT="json",
    )
    result = subprocess.run(
        [script("limbo-api")], env=env, capture_output=True, text=True, timeout=START_TIMEOUT
    )
    assert result.returncode == 2
    assert result.stderr == (
        "limbo-api: configuration error: OTEL_EXPORTER_OTLP_PROTOCOL is "
        "invalid: 'http/json' is not supported; use http/protobuf or grpc\n"
    )


def test_shutdown_gives_up_on_an_unreachable_collector_in_bounded_time(
    telemetry: list[Telemetry],
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    monkeypatch.setenv("OTEL_EXPORTER_OTLP_ENDPOINT", f"http://127.0.0.1:{free_port()}")
    # The exporter retries with backoff until this timeout (10 s by default).
    monkeypatch.setenv("OTEL_EXPORTER_OTLP_TIMEOUT", "4")
    made = setup_telemetry("limbo-api")
    assert made.provider is not None
    made.provider.get_tracer("t").start_span("lost").end()
    started = time.monotonic()
    assert made.shutdown(timeout=1.0) is False
    assert time.monotonic() - started < 3.0, "not held for the exporter's 4 s"
    # Let the abandoned flush end here rather than log over pytest's summary.
    for thread in threading.enumerate():
        if thread.name == "otel-flush":
            thread.join(10)


def test_messaging_attributes_name_the_queue_and_the_operation() -> None:
    client = sqs_http_client(region="eu-west-1", endpoint_url=None, pool=1)  # never called
    queue = SqsQueue(client, "https://sqs.eu-west-1.amazonaws.com/1/mail.fifo")
    attributes = messaging_attributes(queue, "delete", "settle", {"messaging.message.id": "m"})
    assert attributes == {
        "messaging.system": "aws_sqs",
        "messaging.destination.name": "mail.fifo",
        "aws.sqs.queue.url": "https://sqs.eu-west-1.amazonaws.com/1/mail.fifo",
        "messaging.operation.name": "delete",
        "messaging.operation.type": "settle",
        "messaging.message.id": "m",
    }
