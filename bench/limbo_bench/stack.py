"""Starting the pieces every benchmark run needs: emulators, counting proxy, sink.

SQS (and S3, for the payload bucket) runs on LocalStack (its own virtualenv under
``bench/.work/localstack``, so its pins never reach limbo's lock file) and falls back to
moto with a note when LocalStack is not installed or does not start. SES v2 always runs
on limbo-moto: LocalStack's community edition does not emulate it. The emulator and the
sink are started by limbo_devtools' launcher, like everywhere else. The counting proxy
sits in front of both.
"""

from __future__ import annotations

import os
import sys
from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import dataclass, field
from pathlib import Path

import httpx

from limbo_devtools.launcher import Launcher
from limbo_devtools.mailgun_sink import SinkConfig
from limbo_devtools.processes import Process, free_port

__all__ = [
    "BENCH_DIR",
    "Stack",
    "counts",
    "reset_counts",
    "start_stack",
    "upstream_ms",
    "upstream_tail",
]

BENCH_DIR = Path(__file__).resolve().parent.parent
WORK = BENCH_DIR / ".work"
LOCALSTACK_PYTHON = WORK / "localstack" / "bin" / "python"
CREDENTIALS = {
    "AWS_ACCESS_KEY_ID": "testing",
    "AWS_SECRET_ACCESS_KEY": "testing",
    "AWS_DEFAULT_REGION": "us-east-1",
}
SINK_KEY = "bench-mailgun-key"


@dataclass
class Stack:
    endpoint: str  # the counting proxy: what every process is given as AWS_ENDPOINT_URL
    sqs_direct: str  # the SQS emulator itself, for the harness's uncounted calls
    sink: str
    emulator: str  # "localstack" or "moto"
    notes: list[str] = field(default_factory=list)
    processes: dict[str, Process] = field(default_factory=dict)


def counts(stack: Stack) -> dict[str, int]:
    return dict(httpx.get(f"{stack.endpoint}/__bench/counts", timeout=5).json())


def upstream_ms(stack: Stack) -> dict[str, float]:
    """Mean emulator time per action since the last reset, as the proxy saw it."""
    return dict(httpx.get(f"{stack.endpoint}/__bench/latency", timeout=5).json())


def upstream_tail(stack: Stack) -> dict[str, dict[str, float]]:
    """Per action since the last reset: calls and the p50, p99 and maximum upstream ms."""
    return dict(httpx.get(f"{stack.endpoint}/__bench/tail", timeout=5).json())


def reset_counts(stack: Stack) -> None:
    httpx.post(f"{stack.endpoint}/__bench/reset", timeout=5)


# LocalStack keeps every message in Python objects: once a phase's queue holds tens of
# thousands, each full (generation 2) collection stalls every call for 0.1-0.8 s, which
# no real SQS does (seen in the latency sweep as p99s of hundreds of ms while limbo's
# event loop answered /health at once). Young collections still run; full ones do not.
_LOCALSTACK_MAIN = (
    "import gc, runpy; gc.set_threshold(700, 10, 1_000_000_000); "
    "runpy.run_module('localstack.runtime.main', run_name='__main__')"
)


def _localstack(logs: Path) -> Process | None:
    if not LOCALSTACK_PYTHON.exists():
        return None
    port = free_port()
    process = Process(
        "localstack",
        [str(LOCALSTACK_PYTHON), "-c", _LOCALSTACK_MAIN],
        env={
            # S3 for the payload bucket every phase's queues come with (offloaded bodies).
            "SERVICES": "sqs,s3",
            "GATEWAY_LISTEN": f"127.0.0.1:{port}",
            "LOCALSTACK_HOST": f"127.0.0.1:{port}",
            "SQS_ENDPOINT_STRATEGY": "path",
            "DNS_ADDRESS": "0",
            "DISABLE_EVENTS": "1",
            "SKIP_SSL_CERT_DOWNLOAD": "1",
            "FILESYSTEM_ROOT": str(WORK / "localstack-fs"),
            **CREDENTIALS,
        },
        health_url=f"http://127.0.0.1:{port}/_localstack/health",
        log_path=logs / "localstack.log",
    )
    try:
        return process.start(timeout=90)
    except (TimeoutError, RuntimeError) as error:
        print(f"bench: LocalStack did not start ({error}); falling back to moto", file=sys.stderr)
        process.kill()
        return None


def _url(process: Process) -> str:
    assert process.health_url is not None
    url: str = process.health_url
    return url.split("/_localstack")[0].split("/moto-api")[0]


@contextmanager
def start_stack(
    logs: Path,
    *,
    sink_latency_ms: float = 50.0,
    use_localstack: bool = True,
    sink_config: SinkConfig | None = None,
) -> Iterator[Stack]:
    logs.mkdir(parents=True, exist_ok=True)
    os.environ.update(CREDENTIALS)
    # limbo's own pieces (the emulator, the sink) come from the one launcher.
    launcher = Launcher(logs, mailgun_key=SINK_KEY)
    started: list[Process] = []
    notes: list[str] = []
    try:
        sqs = _localstack(logs) if use_localstack else None
        emulator = "localstack"
        ses, _ = launcher.start("emulator")
        if sqs is None:
            emulator = "moto"
            notes.append(
                "LocalStack unavailable: SQS ran on moto, which slows down as the "
                "queue grows; throughput figures are pessimistic"
            )
            sqs = ses
        else:
            started.append(sqs)
        proxy_port = free_port()
        proxy = Process(
            "proxy",
            [
                sys.executable,
                str(BENCH_DIR / "limbo_bench" / "proxy.py"),
                "--port",
                str(proxy_port),
                "--upstream",
                _url(sqs),
                "--ses-upstream",
                _url(ses),
            ],
            health_url=f"http://127.0.0.1:{proxy_port}/__bench/counts",
            log_path=logs / "proxy.log",
        ).start()
        started.append(proxy)
        sink = launcher.sink(sink_config or SinkConfig(latency_ms=sink_latency_ms))
        yield Stack(
            endpoint=f"http://127.0.0.1:{proxy_port}",
            sqs_direct=_url(sqs),
            sink=sink,
            emulator=emulator,
            notes=notes,
            processes={p.name: p for p in [*launcher.processes, *started]},
        )
    finally:
        for process in reversed(started):
            process.stop(timeout=10)
        launcher.stop(timeout=10)
