"""Fixtures that start real servers on loopback through the one launcher: the emulator
(limbo-moto), the Mailgun sink, limbo's console scripts."""

from __future__ import annotations

import os
import uuid
from collections.abc import Iterator
from pathlib import Path

import pytest
from hypothesis import settings
from opentelemetry import trace
from opentelemetry.sdk.trace import TracerProvider

from limbo_devtools.launcher import Launcher
from limbo_devtools.local_aws import LocalAws, provision
from limbo_devtools.processes import Process

from . import tooling
from .holding_proxy import HoldingProxy
from .http_client import HTTP

# Property tests are the same every run and never fail on time: the examples come from a
# fixed derivation, and a loaded machine's slow example is not a failure.
settings.register_profile("limbo", derandomize=True, deadline=None)
settings.load_profile("limbo")

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
    """The emulator (limbo-moto) over HTTP, shared by the session (tests make their own queues)."""
    with Launcher(tmp_path_factory.mktemp("moto")) as launcher:
        yield launcher.emulator()


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
    with Launcher(tmp_path, mailgun_key="key-test") as launcher:
        yield lambda **env: launcher.start("sink", extra=env)[1]


@pytest.fixture
def sink(sink_factory: object) -> str:
    return sink_factory()  # type: ignore[operator,no-any-return]


def sink_messages(url: str) -> list[dict[str, object]]:
    return list(HTTP.get(f"{url}/messages", timeout=5).json()["messages"])


class Limbo:
    """Starts limbo's real console scripts against the test's queue and sink."""

    def __init__(self, aws: LocalAws, logs: Path) -> None:
        self.aws = aws
        self.logs = logs
        # AUTH=disabled unless a test asks for keys: the API refuses to start open otherwise.
        self.launcher = Launcher(
            logs,
            env={
                "LOG_FORMAT": "json",
                "WAIT_TIME_SECONDS": "1",
                "AUTH": "disabled",
                # Any sender domain: tests send from many (tests/api/test_senders.py checks
                # the rule).
                "SENDER_DOMAINS": "*",
            },
            aws=aws,
        )

    def start(self, name: str, **env: str) -> tuple[Process, str]:
        """``name`` is the console script (``limbo-api``) or the launcher's component."""
        return self.launcher.start(name.removeprefix("limbo-"), extra=env)

    def api(self, **env: str) -> tuple[Process, str]:
        return self.start("api", **env)

    def mailgun_worker(self, sink: str, **env: str) -> tuple[Process, str]:
        return self.start("mailgun-worker", MAILGUN_API_URL=sink, **env)

    def ses_worker(self, **env: str) -> tuple[Process, str]:
        return self.start("ses-worker", **env)

    def scheduler(self, **env: str) -> tuple[Process, str]:
        return self.start("limbo-scheduler", **env)

    def log_text(self) -> str:
        return self.launcher.log_text()

    def stop(self) -> None:
        self.launcher.stop(timeout=40)


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


# A test's (section, line) pairs under this property are printed once each at the end
# of the run, whichever worker process ran the test.
SUMMARY_PROPERTY = "limbo_summary"


def pytest_terminal_summary(terminalreporter: pytest.TerminalReporter) -> None:
    sections: dict[str, list[str]] = {}
    for reports in terminalreporter.stats.values():
        for report in reports:
            for key, value in getattr(report, "user_properties", ()):
                if key == SUMMARY_PROPERTY:
                    section, line = value
                    if line not in sections.setdefault(section, []):
                        sections[section].append(line)
    # scripts/tools ran beside the suite, its output in a file: what it did or could not.
    if tooling.reported():
        sections["scripts/tools"] = [*tooling.reported(), f"(all of it in {tooling.LOG})"]
    for section, lines in sections.items():
        terminalreporter.section(section)
        for line in lines:
            terminalreporter.write_line(line)


# Modules that start the run, in this order; then the other slow ones, then the rest.
# The image builds come fourth so that the worker that takes the fuzzer (one test) takes
# them next: on a new machine they wait for scripts/tools (apt-get, debootstrap: 1.5-2.5
# min), and as the first module they held one of the three workers idle for all of it.
FIRST_MODULES = (
    "tests/hostile/test_fuzz.py",
    "tests/reliability/test_faults.py",
    "tests/reliability/test_shutdown.py",
    "tests/images/",
)


def pytest_collection_modifyitems(items: list[pytest.Item]) -> None:
    """The longest modules first, in FIRST_MODULES' order, then the other slow modules
    (stable otherwise): with ./scripts/test's workers taking modules in this order (each
    worker one module, then a second if its first has at most two tests left), the run
    does not end with one of them still busy on a long module while the others wait."""

    def weight(item: pytest.Item) -> int:
        for position, prefix in enumerate(FIRST_MODULES):
            if item.nodeid.startswith(prefix):
                return position
        return len(FIRST_MODULES) + (0 if item.get_closest_marker("slow") is not None else 1)

    items.sort(key=weight)
