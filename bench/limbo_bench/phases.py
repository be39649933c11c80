"""The measured phases of a run; each answers a plain dict that goes into the JSON.

Every phase runs limbo and the baseline one after the other against the same emulator,
proxy and sink, on fresh queues, so the two see the same (noisy) machine minutes apart.
"""

from __future__ import annotations

import asyncio
import functools
import json
import os
import re
import shutil
import subprocess
import sys
import time
import uuid
from collections.abc import Callable
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass
from pathlib import Path
from typing import TYPE_CHECKING, Any

import httpx

from limbo_api.auth import hash_key
from limbo_api.publisher import Lanes
from limbo_devtools.local_aws import LocalAws, provision
from limbo_devtools.processes import Process, free_port, script
from limbo_shared.aws import new_session
from limbo_shared.schema import MailRequest, QueuedMail, Stream

if TYPE_CHECKING:
    from types_boto3_sqs.type_defs import SendMessageBatchRequestEntryTypeDef

from .openloop import Result, mail_body, run_open_loop
from .procstat import sample
from .stack import (
    BENCH_DIR,
    SINK_KEY,
    Stack,
    counts,
    reset_counts,
    upstream_ms,
    upstream_tail,
)

__all__ = [
    "Systems",
    "api_max",
    "api_sweep",
    "at_rest",
    "e2e",
    "moderate",
    "percentiles",
    "ses_drain",
    "worker_drain",
]

LUA = BENCH_DIR / "limbo_bench" / "post_mail.lua"
# limbo's API runs with keys on, as in production; the baseline ignores the header.
API_KEY = "limbo_bench-key-bench-key-bench-key-bench-key-00"
SQS_SEND_ACTIONS = ("SendMessageBatch", "SendMessage")
# Seconds a process may take to answer /health: generous, the 2 cores are shared.
START_TIMEOUT = 90


def percentiles(values: list[float]) -> dict[str, float | None]:
    if not values:
        return {"p50": None, "p90": None, "p99": None, "max": None}
    ordered = sorted(values)

    def at(q: float) -> float:
        return ordered[min(len(ordered) - 1, int(q * len(ordered)))]

    return {"p50": at(0.50), "p90": at(0.90), "p99": at(0.99), "max": ordered[-1]}


@dataclass
class Systems:
    """How to start each system's API and worker on a given queue."""

    stack: Stack
    logs: Path
    env: dict[str, str]
    # Another commit's limbo (checkout.py) as the baseline; None: bench/baseline/.
    baseline_bin: Path | None = None

    def queue(self, prefix: str, *, bulk: bool = True) -> LocalAws:
        return provision(
            self.stack.endpoint,
            queue_name=f"{prefix}-{uuid.uuid4().hex[:8]}.fifo",
            sender="bench@example.com",
            bulk=bulk,
        )

    def drop(self, aws: LocalAws) -> None:
        """Delete a phase's queues (uncounted), so the emulator's heap stays small and
        its garbage collection does not stall the next phase."""
        sqs = new_session().client(
            "sqs", endpoint_url=self.stack.sqs_direct, region_name=aws.region
        )
        for url in (aws.queue_url, aws.bulk_queue_url, aws.dead_letter_url):
            if url is not None:
                sqs.delete_queue(QueueUrl=url)

    def infra_cpu(self) -> dict[str, float]:
        """CPU seconds so far of the emulators, proxy and sink (they share the 2 cores)."""
        return {name: sample(p.pid).cpu_seconds for name, p in self.stack.processes.items()}

    def _env(self, aws: LocalAws, port: int, extra: dict[str, str] | None = None) -> dict[str, str]:
        return {
            **self.env,
            **aws.environment(),
            "PORT": str(port),
            "LOG_FORMAT": "json",
            **(extra or {}),
        }

    def api(
        self, system: str, aws: LocalAws, extra: dict[str, str] | None = None
    ) -> tuple[Process, int]:
        port = free_port()
        if system == "limbo":
            argv = [script("limbo-api")]
        elif self.baseline_bin is not None:
            argv = [str(self.baseline_bin / "limbo-api")]
        else:
            argv = [sys.executable, str(BENCH_DIR / "baseline" / "api.py")]
        keys = {"API_KEYS": f"bench={hash_key(API_KEY)}", "RATE_LIMIT": "0"}
        process = Process(
            f"{system}-api",
            argv,
            env=self._env(aws, port, {**keys, **(extra or {})}),
            health_url=f"http://127.0.0.1:{port}/health",
            log_path=self.logs / f"{system}-api-{port}.log",
        ).start(timeout=START_TIMEOUT)
        return process, port

    def worker(
        self,
        system: str,
        aws: LocalAws,
        provider: str = "mailgun",
        env: dict[str, str] | None = None,
    ) -> Process:
        port = free_port()
        extra = {
            "MAILGUN": SINK_KEY,
            "DOMAIN": "bench.example.com",
            "MAILGUN_API_URL": self.stack.sink,
            # SHUTDOWN_GRACE must cover SEND_TIMEOUT + 3 s (the worker checks it at start).
            "SEND_TIMEOUT": "4",
            "SHUTDOWN_GRACE": "8",
            **(env or {}),
        }
        if system == "limbo":
            argv = [script(f"limbo-{provider}-worker")]
        elif self.baseline_bin is not None:
            argv = [str(self.baseline_bin / f"limbo-{provider}-worker")]
        else:
            argv = [sys.executable, str(BENCH_DIR / "baseline" / "worker.py")]
        return Process(
            f"{system}-{provider}-worker",
            argv,
            env=self._env(aws, port, extra),
            health_url=f"http://127.0.0.1:{port}/health",
            log_path=self.logs / f"{system}-{provider}-worker-{port}.log",
        ).start(timeout=START_TIMEOUT)


def _sink_count(stack: Stack) -> int:
    return int(
        httpx.get(f"{stack.sink}/messages", params={"count_only": 1}, timeout=5).json()["count"]
    )


def _clear_sink(stack: Stack) -> None:
    httpx.delete(f"{stack.sink}/messages", timeout=10)


def _sqs_sends(delta: dict[str, int]) -> int:
    return sum(delta.get(action, 0) for action in SQS_SEND_ACTIONS)


# -- API: maximum throughput (wrk) --------------------------------------------------------


def _wrk(port: int, seconds: float, connections: int) -> dict[str, Any]:
    wrk = shutil.which("wrk")
    if wrk is None:
        raise RuntimeError("wrk is not installed (bench/run installs it with apt-get)")
    out = subprocess.run(
        [
            wrk,
            "-t1",
            f"-c{connections}",
            f"-d{max(1, round(seconds))}s",
            "--timeout",
            "10s",
            "-s",
            str(LUA),
            f"http://127.0.0.1:{port}/v1/mail",
        ],
        capture_output=True,
        text=True,
        timeout=seconds + 60,
        check=True,
        env={**os.environ, "BENCH_KEY": API_KEY},
    ).stdout
    match = re.search(r"^WRK_JSON (.*)$", out, re.MULTILINE)
    if match is None:
        raise RuntimeError(f"wrk printed no summary:\n{out}")
    return dict(json.loads(match.group(1)))


def api_max(
    systems: Systems, system: str, api: Process, port: int, *, seconds: float, connections: int = 64
) -> dict[str, Any]:
    _wrk(port, min(3.0, seconds), connections)  # warm-up: imports, pools, first batches
    reset_counts(systems.stack)
    before, infra_before = sample(api.pid), systems.infra_cpu()
    result = _wrk(port, seconds, connections)
    after, infra_after = sample(api.pid), systems.infra_cpu()
    delta = counts(systems.stack)
    emulator_ms = upstream_ms(systems.stack)
    accepted = result["requests"] - result["non_2xx"]
    duration = result["duration_us"] / 1e6
    return {
        "system": system,
        "connections": connections,
        "seconds": duration,
        "requests": result["requests"],
        "accepted": accepted,
        "errors": result["non_2xx"]
        + result["connect_errors"]
        + result["read_errors"]
        + result["write_errors"]
        + result["timeouts"],
        "accepted_per_second": accepted / duration,
        "latency_ms": {k: result[f"{k}_us"] / 1000 for k in ("p50", "p90", "p99", "max")},
        "cpu_ms_per_email": 1000 * (after.cpu_seconds - before.cpu_seconds) / max(1, accepted),
        "cpu_seconds_per_1000": 1000 * (after.cpu_seconds - before.cpu_seconds) / max(1, accepted),
        "sqs_requests": delta,
        "sqs_requests_per_email": _sqs_sends(delta) / max(1, accepted),
        "api_cores_used": (after.cpu_seconds - before.cpu_seconds) / duration,
        "api_runqueue_wait_fraction": (after.runqueue_wait_seconds - before.runqueue_wait_seconds)
        / duration,
        "emulator_ms_per_call": emulator_ms,
        "infra_cores_used": {
            name: round((infra_after[name] - infra_before[name]) / duration, 3)
            for name in infra_after
        },
    }


# -- API: latency at fixed offered rates (open loop) ----------------------------------------


def _summarize(result: Result) -> dict[str, Any]:
    ok = result.ok
    in_time = [s for s in ok if s.index / result.rate + s.latency <= result.duration]
    latencies = [1000 * s.latency for s in ok]
    return {
        "offered_per_second": result.rate,
        "seconds": result.duration,
        "sent": len(result.samples) + result.late,
        "ok": len(ok),
        "failed": len(result.samples) - len(ok),
        "unanswered": result.late,
        "achieved_per_second": len(in_time) / result.duration,
        "latency_ms": percentiles(latencies),
    }


def open_loop(
    port: int, rate: float, seconds: float, subject: Callable[[int], str], grace: float = 5.0
) -> Result:
    async def go() -> Result:
        return await run_open_loop(
            "127.0.0.1",
            port,
            "/v1/mail",
            rate=rate,
            duration=seconds,
            body=lambda i: mail_body(subject(i), i),
            grace=grace,
            headers=f"Authorization: Bearer {API_KEY}\r\n",
        )

    try:
        import uvloop

        return uvloop.run(go())
    except ImportError:
        return asyncio.run(go())


def api_sweep(
    systems: Systems,
    system: str,
    api: Process,
    port: int,
    rates: list[float],
    *,
    seconds: float,
    focus_rate: float,
    focus_seconds: float,
) -> dict[str, Any]:
    points = []
    focus: dict[str, Any] = {}
    open_loop(port, 20, 1.0, lambda i: f"warm {system} {i}")  # connections, first batches
    for rate in sorted({*rates, focus_rate}):
        is_focus = rate == focus_rate
        reset_counts(systems.stack)
        before, generator_before = sample(api.pid), time.process_time()
        prefix = f"sweep {system} {rate:.0f}"
        result = open_loop(
            port,
            rate,
            focus_seconds if is_focus else seconds,
            functools.partial("{} {}".format, prefix),
        )
        after, generator_after = sample(api.pid), time.process_time()
        point = _summarize(result)
        # What the emulator itself took per SendMessageBatch meanwhile (the proxy's
        # clock): the share of the API's latency that is SQS's, not limbo's.
        point["emulator_send_ms"] = upstream_tail(systems.stack).get("SendMessageBatch")
        point["cpu_ms_per_email"] = (
            1000 * (after.cpu_seconds - before.cpu_seconds) / max(1, point["ok"])
        )
        # The generator shares the cores with what it measures: its own cost, for the record.
        point["generator_cpu_ms_per_request"] = (
            1000 * (generator_after - generator_before) / max(1, point["sent"])
        )
        point["api_runqueue_wait_fraction"] = (
            after.runqueue_wait_seconds - before.runqueue_wait_seconds
        ) / point["seconds"]
        points.append(point)
        if is_focus:
            focus = {**point, "latencies_ms": [round(1000 * s.latency, 3) for s in result.ok]}
        time.sleep(0.5)  # let a saturated API catch up before the next rate
    return {"system": system, "points": points, "focus": focus}


# -- Worker: throughput at saturation (a pre-filled queue) ----------------------------------


def prefill(
    aws: LocalAws,
    stack: Stack,
    count: int,
    subject: str,
    *,
    queue_url: str | None = None,
    owner: str = "default",
    stream: Stream = "transactional",
) -> None:
    """Put ``count`` envelopes on the queue (default: QUEUE) the way limbo's API would,
    uncounted."""
    sqs = new_session().client("sqs", endpoint_url=stack.sqs_direct, region_name=aws.region)
    mail = MailRequest.model_validate(
        {
            "from": "bench@example.com",
            "to": ["someone@example.com"],
            "subject": subject,
            "message": "Hello " * 40,
        }
    )

    lanes = Lanes(16)

    def batch(start: int) -> None:
        entries: list[SendMessageBatchRequestEntryTypeDef] = []
        for i in range(start, min(count, start + 10)):
            message_id = lanes.new_id(owner)
            body = QueuedMail(
                id=message_id, owner=owner, submitted_at=time.time(), stream=stream, mail=mail
            ).to_json()
            entries.append(
                {
                    "Id": str(i - start),
                    "MessageBody": body,
                    "MessageGroupId": lanes.group_id(owner, message_id),
                    "MessageDeduplicationId": message_id,
                }
            )
        response = sqs.send_message_batch(QueueUrl=queue_url or aws.queue_url, Entries=entries)
        if response.get("Failed"):
            raise RuntimeError(f"prefill failed: {response['Failed'][:1]}")

    with ThreadPoolExecutor(4) as pool:
        list(pool.map(batch, range(0, count, 10)))


def _drain(
    systems: Systems, worker: Process, target: int, limit: float, delivered: Callable[[], int]
) -> dict[str, Any]:
    """Poll delivery until ``target`` or ``limit`` seconds; the steady rate is 10 %→90 %."""
    start = time.monotonic()
    first = sample(worker.pid)
    first_cpu = first.cpu_seconds
    infra_before = systems.infra_cpu()
    trace: list[tuple[float, int, float]] = []
    while True:
        now = time.monotonic() - start
        done = delivered()
        trace.append((now, done, sample(worker.pid).cpu_seconds))
        if done >= target or now > limit:
            break
        time.sleep(0.2)
    time.sleep(1.5)  # the last deletes wait up to a second for company
    final = delivered()
    low = next((p for p in trace if p[1] >= 0.1 * final), trace[0])
    high = next((p for p in trace if p[1] >= 0.9 * final), trace[-1])
    steady_rate = (high[1] - low[1]) / (high[0] - low[0]) if high[0] > low[0] else 0.0
    steady_cpu = (high[2] - low[2]) / max(1, high[1] - low[1])
    total_cpu = trace[-1][2] - first_cpu
    infra_after = systems.infra_cpu()
    last = sample(worker.pid)
    return {
        "worker_runqueue_wait_fraction": (last.runqueue_wait_seconds - first.runqueue_wait_seconds)
        / max(0.1, trace[-1][0]),
        "infra_cpu_ms_per_email": {
            name: round(1000 * (infra_after[name] - infra_before[name]) / max(1, final), 3)
            for name in infra_after
        },
        "target": target,
        "delivered": final,
        "seconds": trace[-1][0],
        "emails_per_second": steady_rate,
        "cpu_ms_per_email": 1000 * steady_cpu,
        # Cores the worker used while steady: well under 1 means it was not the bottleneck.
        "worker_cores_used": (high[2] - low[2]) / (high[0] - low[0]) if high[0] > low[0] else 0.0,
        "cpu_ms_per_email_overall": 1000 * total_cpu / max(1, final),
        "peak_rss_mb": sample(worker.pid).peak_rss_mb,
        "trace": [(round(t, 2), n) for t, n, _ in trace],
    }


def worker_drain(systems: Systems, system: str, *, count: int, limit: float) -> dict[str, Any]:
    aws = systems.queue(f"{system}-drain")
    prefill(aws, systems.stack, count, f"drain {system}")
    _clear_sink(systems.stack)
    reset_counts(systems.stack)
    worker = systems.worker(system, aws)
    try:
        result = _drain(systems, worker, count, limit, lambda: _sink_count(systems.stack))
        delta = counts(systems.stack)
        result["emulator_ms_per_call"] = upstream_ms(systems.stack)
    finally:
        worker.stop(timeout=15)
        systems.drop(aws)
    # The worker's start-up call (GetQueueAttributes for the redrive policy) is not per email.
    per_email = {k: v / max(1, result["delivered"]) for k, v in delta.items()}
    return {
        "system": system,
        **result,
        "sqs_requests": delta,
        "sqs_requests_per_email": sum(v for k, v in per_email.items() if k != "GetQueueAttributes"),
    }


def ses_drain(systems: Systems, *, count: int, limit: float) -> dict[str, Any]:
    """limbo's SES worker against moto's SES v2 (no injected latency): a smoke figure."""
    aws = systems.queue("limbo-ses")
    prefill(aws, systems.stack, count, "ses drain")
    reset_counts(systems.stack)
    worker = systems.worker("limbo", aws, provider="ses")

    sqs = new_session().client("sqs", endpoint_url=systems.stack.sqs_direct, region_name=aws.region)

    def delivered() -> int:
        # moto's SES keeps no cheap count; a message gone from the queue was sent.
        attributes = sqs.get_queue_attributes(
            QueueUrl=aws.queue_url,
            AttributeNames=["ApproximateNumberOfMessages", "ApproximateNumberOfMessagesNotVisible"],
        )["Attributes"]
        return (
            count
            - int(attributes["ApproximateNumberOfMessages"])
            - int(attributes["ApproximateNumberOfMessagesNotVisible"])
        )

    try:
        result = _drain(systems, worker, count, limit, delivered)
        delta = counts(systems.stack)
    finally:
        worker.stop(timeout=15)
        systems.drop(aws)
    return {"system": "limbo", "provider": "ses (moto)", **result, "sqs_requests": delta}


# -- End to end at a low rate ----------------------------------------------------------------


def e2e(systems: Systems, system: str, *, rate: float, seconds: float) -> dict[str, Any]:
    aws = systems.queue(f"{system}-e2e")
    api, port = systems.api(system, aws)
    worker = systems.worker(system, aws)
    tag = uuid.uuid4().hex[:6]
    try:
        open_loop(port, 5, 1.0, lambda i: f"warm {tag} {i}")  # first connections, first batch
        time.sleep(1.0)
        _clear_sink(systems.stack)
        reset_counts(systems.stack)
        api_before, worker_before = sample(api.pid), sample(worker.pid)
        result = open_loop(port, rate, seconds, lambda i: f"e2e {tag} {i}")
        deadline = time.monotonic() + 15
        while _sink_count(systems.stack) < len(result.ok) and time.monotonic() < deadline:
            time.sleep(0.2)
        time.sleep(1.5)  # the last deletes wait up to a second for company
        api_after, worker_after = sample(api.pid), sample(worker.pid)
        delta = counts(systems.stack)
        emulator_ms = upstream_ms(systems.stack)
        received = {}
        for message in httpx.get(f"{systems.stack.sink}/messages", timeout=30).json()["messages"]:
            received[message["fields"]["subject"][0]] = message["received_at"]
    finally:
        worker.stop(timeout=15)
        api.stop(timeout=15)
        systems.drop(aws)
    sent_at = {f"e2e {tag} {s.index}": s.sent_at for s in result.ok}
    e2e_ms = [1000 * (received[k] - t) for k, t in sent_at.items() if k in received]
    # The part after the API answered: queue, receive, worker, provider call (can be
    # negative when the worker is faster than the API's response reaching the client).
    after_answer = [
        1000 * (received[f"e2e {tag} {s.index}"] - s.sent_at) - 1000 * s.latency
        for s in result.ok
        if f"e2e {tag} {s.index}" in received
    ]
    delivered = len(e2e_ms)
    return {
        "system": system,
        "rate": rate,
        "seconds": seconds,
        "accepted": len(result.ok),
        "delivered": delivered,
        "api_latency_ms": percentiles([1000 * s.latency for s in result.ok]),
        "e2e_latency_ms": percentiles(e2e_ms),
        "e2e_latencies_ms": [round(v, 3) for v in e2e_ms],
        "after_api_answer_ms": percentiles(after_answer),
        "sqs_requests": delta,
        "emulator_ms_per_call": emulator_ms,
        "sqs_requests_per_email": sum(delta.values()) / max(1, delivered),
        "api_cpu_ms_per_email": 1000
        * (api_after.cpu_seconds - api_before.cpu_seconds)
        / max(1, delivered),
        "worker_cpu_ms_per_email": 1000
        * (worker_after.cpu_seconds - worker_before.cpu_seconds)
        / max(1, delivered),
        "api_peak_rss_mb": api_after.peak_rss_mb,
        "worker_peak_rss_mb": worker_after.peak_rss_mb,
    }


# -- At rest and at a moderate, bursty load -------------------------------------------------


def at_rest(systems: Systems, system: str, *, seconds: float, bulk: bool = True) -> dict[str, Any]:
    """An idle worker on an empty queue: what it asks of SQS per minute, and its CPU.
    ``bulk``: with a BULK_QUEUE beside QUEUE, which the worker long-polls as well."""
    aws = systems.queue(f"{system}-rest", bulk=bulk)
    worker = systems.worker(system, aws)
    try:
        time.sleep(2.0)  # start-up calls (redrive policy, first polls) are not "at rest"
        reset_counts(systems.stack)
        before = sample(worker.pid)
        time.sleep(seconds)
        after = sample(worker.pid)
        delta = counts(systems.stack)
    finally:
        worker.stop(timeout=15)
        systems.drop(aws)
    per_minute = 60.0 / seconds
    return {
        "system": system,
        "seconds": seconds,
        "queues": 2 if bulk else 1,
        "sqs_requests": delta,
        "receives_per_minute": delta.get("ReceiveMessage", 0) * per_minute,
        "sqs_requests_per_minute": sum(delta.values()) * per_minute,
        "cpu_ms_per_minute": 1000 * (after.cpu_seconds - before.cpu_seconds) * per_minute,
    }


def moderate(
    systems: Systems, system: str, *, rate: float, burst: int, seconds: float
) -> dict[str, Any]:
    """``rate`` emails/s arriving in bursts of ``burst`` at once, API to provider."""
    aws = systems.queue(f"{system}-moderate")
    api, port = systems.api(system, aws)
    worker = systems.worker(system, aws)
    tag = uuid.uuid4().hex[:6]
    bursts = max(1, round(rate * seconds / burst))
    try:
        open_loop(port, 5, 1.0, lambda i: f"warm {tag} {i}")
        time.sleep(1.0)
        _clear_sink(systems.stack)
        reset_counts(systems.stack)
        api_before, worker_before = sample(api.pid), sample(worker.pid)
        accepted = 0
        for index in range(bursts):
            started = time.monotonic()
            # A burst is an open loop fast enough to put all of it in flight at once.
            result = open_loop(
                port,
                burst * 100,
                burst / (burst * 100),
                functools.partial("mod {} {} {}".format, tag, index),
            )
            accepted += len(result.ok)
            time.sleep(max(0.0, burst / rate - (time.monotonic() - started)))
        deadline = time.monotonic() + 20
        while _sink_count(systems.stack) < accepted and time.monotonic() < deadline:
            time.sleep(0.2)
        time.sleep(1.5)  # the last deletes wait up to a second for company
        api_after, worker_after = sample(api.pid), sample(worker.pid)
        delta = counts(systems.stack)
        delivered = _sink_count(systems.stack)
    finally:
        worker.stop(timeout=15)
        api.stop(timeout=15)
        systems.drop(aws)
    return {
        "system": system,
        "rate": rate,
        "burst": burst,
        "accepted": accepted,
        "delivered": delivered,
        "sqs_requests": delta,
        "sqs_requests_per_email": sum(delta.values()) / max(1, delivered),
        "api_cpu_ms_per_email": 1000
        * (api_after.cpu_seconds - api_before.cpu_seconds)
        / max(1, delivered),
        "worker_cpu_ms_per_email": 1000
        * (worker_after.cpu_seconds - worker_before.cpu_seconds)
        / max(1, delivered),
    }
