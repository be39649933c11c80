"""CPU cost of tracing per message: limbo-api + limbo-mailgun-worker, tracing on vs off.

    .venv/bin/python bench/tracing_cost.py [--messages 2000] [--runs 3]

Each run starts a fresh queue (moto server), a Mailgun sink that only counts, the API
and the Mailgun worker in one of three modes, warms them up, then POSTs the messages
(32 at a time) and waits until the sink has all of them:

  off       OTEL_SDK_DISABLED=true: no spans at all
  ids-only  the SDK with no endpoint: spans made (ids in logs and messages), not exported
  export    exporting over OTLP/HTTP to a receiver in this script (default batch settings)

CPU is user+system time of the two processes (all threads) from /proc/<pid>/stat just
before the messages; at the end the processes get SIGTERM and their final figures come
from wait4's rusage (the same counters), so the span flush at exit is counted too. The
load generator, moto, the sink and the receiver are not counted. Modes alternate within
each run so drift on a shared machine hits all of them; compare ratios, not absolutes.

Measured 2026-11-28 (2 shared cores, load average ~10; medians of 3 runs x 2000 messages,
CPU ms per message): off 5.17 (api 1.31, worker 3.86); ids-only 5.84 (1.13x); export
6.57 (1.27x; api 1.42x, worker 1.22x), about 5.4 spans exported per message.
"""

from __future__ import annotations

import argparse
import asyncio
import os
import signal
import statistics
import tempfile
import time
import uuid
from pathlib import Path

import httpx

from limbo_devtools.launcher import Launcher
from limbo_devtools.mailgun_sink import SinkConfig
from limbo_devtools.otlp_receiver import OtlpReceiver
from limbo_devtools.processes import Process

MODES = ("off", "ids-only", "export")
_TICKS = os.sysconf("SC_CLK_TCK")
SENDERS = 8  # FIFO serves a group one batch at a time: spread over 8 x 16 lanes


def mail(i: int) -> dict[str, object]:
    return {
        "from": f"sender{i % SENDERS}@example.com",
        "to": ["you@example.com"],
        "subject": "bench",
        "message": "a short body",
    }


def cpu_seconds(pid: int) -> float:
    with open(f"/proc/{pid}/stat") as stat:
        # The command name may hold spaces; count fields after its closing parenthesis.
        fields = stat.read().rsplit(")", 1)[1].split()
    return (int(fields[11]) + int(fields[12])) / _TICKS


def cpu_at_exit(process: Process) -> float:
    process.signal(signal.SIGTERM)
    _, status, usage = os.wait4(process.pid, 0)
    if os.waitstatus_to_exitcode(status) != 0:
        raise RuntimeError(f"{process.name} exited with {os.waitstatus_to_exitcode(status)}")
    return usage.ru_utime + usage.ru_stime


async def post_all(api: str, count: int, concurrency: int = 32) -> None:
    queue: asyncio.Queue[int] = asyncio.Queue()
    for i in range(count):
        queue.put_nowait(i)
    async with httpx.AsyncClient(timeout=30) as client:

        async def sender() -> None:
            while not queue.empty():
                i = queue.get_nowait()
                response = await client.post(f"{api}/v1/mail", json=mail(i))
                response.raise_for_status()

        await asyncio.gather(*(sender() for _ in range(concurrency)))


def delivered(sink: str) -> int:
    return int(httpx.get(f"{sink}/messages", timeout=10).json()["count"])


def wait_delivered(sink: str, count: int, timeout: float = 300) -> None:
    deadline = time.monotonic() + timeout
    while delivered(sink) < count:
        if time.monotonic() > deadline:
            raise TimeoutError(f"only {delivered(sink)} of {count} delivered")
        time.sleep(0.2)


def one_run(mode: str, moto: str, messages: int, logs: Path) -> dict[str, float]:
    receiver = OtlpReceiver().start()
    telemetry = {
        "off": {"OTEL_SDK_DISABLED": "true"},
        "export": {"OTEL_EXPORTER_OTLP_ENDPOINT": receiver.endpoint},
    }.get(mode, {})
    launcher = Launcher(logs, env={"LOG_FORMAT": "json", **telemetry}, mailgun_key="key")
    launcher.provision(moto, queue_name=f"b{uuid.uuid4().hex[:12]}.fifo")
    sink_url = launcher.sink(SinkConfig(record=False))
    api, api_url = launcher.start("api")
    worker, _ = launcher.start("mailgun-worker")
    try:
        warm = 100
        asyncio.run(post_all(api_url, warm))
        wait_delivered(sink_url, warm)
        before = {"api": cpu_seconds(api.pid), "worker": cpu_seconds(worker.pid)}
        started = time.monotonic()
        asyncio.run(post_all(api_url, messages))
        posted = time.monotonic() - started
        wait_delivered(sink_url, warm + messages)
        elapsed = time.monotonic() - started
        after = {"api": cpu_at_exit(api), "worker": cpu_at_exit(worker)}
    finally:
        launcher.stop(timeout=30)
        receiver.stop()
    result = {name: (after[name] - before[name]) / messages * 1000 for name in before}
    result["total"] = result["api"] + result["worker"]
    result["rate"] = messages / elapsed
    result["post_rate"] = messages / posted
    result["spans"] = len(receiver.spans())
    return result


def main() -> None:
    parser = argparse.ArgumentParser(
        description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter
    )
    parser.add_argument("--messages", type=int, default=2000)
    parser.add_argument("--runs", type=int, default=3)
    args = parser.parse_args()
    logs = Path(tempfile.mkdtemp(prefix="limbo-tracing-cost-"))
    # Each mode sets its own OTEL_* variables; none may leak in from this shell.
    for name in [name for name in os.environ if name.startswith("OTEL_")]:
        del os.environ[name]
    emulator = Launcher(logs)
    moto = emulator.emulator()
    results: dict[str, list[dict[str, float]]] = {mode: [] for mode in MODES}
    try:
        for run in range(args.runs):
            # Rotate the order so no mode always runs first (or last) in a run.
            order = MODES[run % len(MODES) :] + MODES[: run % len(MODES)]
            for mode in order:
                result = one_run(mode, moto, args.messages, logs)
                results[mode].append(result)
                print(
                    f"run {run + 1} {mode:8}  api {result['api']:.3f}  worker "
                    f"{result['worker']:.3f}  total {result['total']:.3f} ms CPU/message  "
                    f"({result['post_rate']:.0f} msg/s in, {result['rate']:.0f} msg/s through, "
                    f"{result['spans']:.0f} spans exported)",
                    flush=True,
                )
    finally:
        emulator.stop()
    median = {
        mode: {key: statistics.median(r[key] for r in runs) for key in runs[0]}
        for mode, runs in results.items()
    }
    off = median["off"]
    print(
        f"\nmedians of {args.runs} runs, {args.messages} messages each "
        f"(CPU ms per message; ratio to off)"
    )
    for mode in MODES:
        m = median[mode]
        print(
            f"  {mode:8}  api {m['api']:.3f} ({m['api'] / off['api']:.2f}x)  "
            f"worker {m['worker']:.3f} ({m['worker'] / off['worker']:.2f}x)  "
            f"total {m['total']:.3f} ({m['total'] / off['total']:.2f}x)"
        )
    print(f"logs in {logs}")


if __name__ == "__main__":
    main()
