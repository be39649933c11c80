"""Fixtures that start real servers on loopback: moto server, the Mailgun sink."""

from __future__ import annotations

import os
import uuid
from collections.abc import Iterator
from pathlib import Path

import httpx
import pytest
from opentelemetry import trace
from opentelemetry.sdk.trace import TracerProvider

from limbo_devtools.local_aws import LocalAws, provision
from limbo_devtools.processes import Process, free_port, script

from .holding_proxy import HoldingProxy

# In-process tests trace like a real process does (ids, propagation), exporting nothing.
trace.set_tracer_provider(TracerProvider())

os.environ.setdefault("AWS_ACCESS_KEY_ID", "testing")
os.environ.setdefault("AWS_SECRET_ACCESS_KEY", "testing")
os.environ.setdefault("AWS_DEFAULT_REGION", "us-east-1")
# Tests never export spans unless they ask to.
for variable in ("OTEL_EXPORTER_OTLP_ENDPOINT", "OTEL_EXPORTER_OTLP_TRACES_ENDPOINT"):
    os.environ.pop(variable, None)


@pytest.fixture(scope="session")
def moto_endpoint(tmp_path_factory: pytest.TempPathFactory) -> Iterator[str]:
    """A real moto server over HTTP, shared by the session (each test makes its own queues)."""
    port = free_port()
    logs = tmp_path_factory.mktemp("moto")
    process = Process(
        "moto",
        [script("limbo-moto"), "-H", "127.0.0.1", "-p", str(port)],
        health_url=f"http://127.0.0.1:{port}/moto-api/",
        log_path=logs / "moto.log",
    ).start()
    yield f"http://127.0.0.1:{port}"
    process.stop()


@pytest.fixture
def holding_proxy(moto_endpoint: str) -> Iterator[HoldingProxy]:
    """A proxy to moto that holds chosen AWS actions until released (see holding_proxy.py)."""
    proxy = HoldingProxy(moto_endpoint)
    yield proxy
    proxy.close()


@pytest.fixture
def tracked_aws(moto_endpoint: str) -> LocalAws:
    """Like ``aws``, plus a fresh DynamoDB status table: its environment turns tracking on."""
    name = f"t{uuid.uuid4().hex[:12]}"
    return provision(
        moto_endpoint,
        queue_name=f"{name}.fifo",
        sender="limbo@example.com",
        visibility_timeout=30,
        status_table=f"{name}-status",
    )


@pytest.fixture
def aws(moto_endpoint: str) -> LocalAws:
    """A fresh FIFO queue with its dead-letter queue and a verified sender."""
    return provision(
        moto_endpoint,
        queue_name=f"t{uuid.uuid4().hex[:12]}.fifo",
        sender="limbo@example.com",
        visibility_timeout=30,
    )


@pytest.fixture
def sink_factory(tmp_path: Path) -> Iterator[object]:
    """Start Mailgun sinks with the given environment (latency, failures)."""
    started: list[Process] = []

    def start(**env: str) -> str:
        port = free_port()
        process = Process(
            "sink",
            [script("limbo-mailgun-sink")],
            env={"SINK_PORT": str(port), "SINK_API_KEY": "key-test", **env},
            health_url=f"http://127.0.0.1:{port}/health",
            log_path=tmp_path / f"sink-{port}.log",
        ).start()
        started.append(process)
        return f"http://127.0.0.1:{port}"

    yield start
    for process in started:
        process.stop()


@pytest.fixture
def sink(sink_factory: object) -> str:
    return sink_factory()  # type: ignore[operator,no-any-return]


def sink_messages(url: str) -> list[dict[str, object]]:
    return list(httpx.get(f"{url}/messages", timeout=5).json()["messages"])


class Limbo:
    """Starts limbo's real console scripts against the test's queue and sink."""

    def __init__(self, aws: LocalAws, logs: Path) -> None:
        self.aws = aws
        self.logs = logs
        self.processes: list[Process] = []

    def env(self, **extra: str) -> dict[str, str]:
        # AUTH=disabled unless a test asks for keys: the API refuses to start open otherwise.
        return {
            **self.aws.environment(),
            "LOG_FORMAT": "json",
            "WAIT_TIME_SECONDS": "1",
            "AUTH": "disabled",
            **extra,
        }

    def start(self, name: str, **env: str) -> tuple[Process, str]:
        port = free_port()
        process = Process(
            name,
            [script(name)],
            env=self.env(PORT=str(port), **env),
            health_url=f"http://127.0.0.1:{port}/health",
            log_path=self.logs / f"{name}-{port}.log",
        ).start()
        self.processes.append(process)
        return process, f"http://127.0.0.1:{port}"

    def api(self, **env: str) -> tuple[Process, str]:
        return self.start("limbo-api", **env)

    def mailgun_worker(self, sink: str, **env: str) -> tuple[Process, str]:
        return self.start(
            "limbo-mailgun-worker",
            MAILGUN="key-test",
            DOMAIN="mg.example.com",
            MAILGUN_API_URL=sink,
            **env,
        )

    def ses_worker(self, **env: str) -> tuple[Process, str]:
        return self.start("limbo-ses-worker", **env)

    def scheduler(self, **env: str) -> tuple[Process, str]:
        return self.start("limbo-scheduler", **env)

    def log_text(self) -> str:
        return "\n".join(p.read_text(errors="replace") for p in sorted(self.logs.glob("*.log")))

    def stop(self) -> None:
        for process in reversed(self.processes):
            process.stop(timeout=40)


@pytest.fixture
def limbo(aws: LocalAws, tmp_path: Path) -> Iterator[Limbo]:
    logs = tmp_path / "logs"
    logs.mkdir()
    system = Limbo(aws, logs)
    yield system
    system.stop()


@pytest.fixture
def tracked_limbo(tracked_aws: LocalAws, tmp_path: Path) -> Iterator[Limbo]:
    """``limbo`` with STATUS_TABLE set for every process it starts."""
    logs = tmp_path / "tracked-logs"
    logs.mkdir()
    system = Limbo(tracked_aws, logs)
    yield system
    system.stop()
