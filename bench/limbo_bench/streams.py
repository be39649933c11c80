"""``python -m limbo_bench.streams``: head-of-line blocking, before and after, same run.

Three scenarios, each on fresh queues, one API and one Mailgun worker:

- **retries**: emails at 20/s from one key, 3 % of them to recipients the sink fails
  three times (500) before accepting; healthy mail's POST-to-provider latency with the
  old in-place retry (``RETRY_MOVES=false``: the message waits in its FIFO group) and
  with retries moved out of their group (the default).
- **bulk backlog**: a bulk backlog queued, transactional mail at 10/s while it drains;
  before = one queue for both (no ``BULK_QUEUE``), after = the bulk stream's own queue.
- **cost**: SQS requests per email (counted by the proxy) at saturation, and at 30/s
  with and without failures.

Writes ``streams-<time>.json`` and ``streams.md`` into ``bench/results/``.
"""

from __future__ import annotations

import argparse
import asyncio
import json
import time
import uuid
from collections.abc import Callable
from pathlib import Path
from typing import Any

import httpx

from limbo_devtools.mailgun_sink import SinkConfig

from . import phases
from .openloop import Result, run_open_loop
from .stack import BENCH_DIR, WORK, Stack, counts, reset_counts, start_stack

FAIL_PREFIX = "fail-"
FAIL_EVERY = 33  # one message in 33 (3 %) fails transiently three times


def _body(
    tag: str, failing: Callable[[int], bool], stream: str | None = None
) -> Callable[[int], bytes]:
    def body(index: int) -> bytes:
        prefix = FAIL_PREFIX if failing(index) else "ok-"
        mail: dict[str, Any] = {
            "from": "bench@example.com",
            "to": [f"{prefix}{tag}-{index}@example.com"],
            "subject": f"{tag} {index}",
            "message": "Hello from the limbo benchmark. " * 8,
        }
        if stream is not None:
            mail["stream"] = stream
        return json.dumps(mail).encode()

    return body


def _open_loop(port: int, rate: float, seconds: float, body: Callable[[int], bytes]) -> Result:
    async def go() -> Result:
        return await run_open_loop(
            "127.0.0.1", port, "/v1/mail", rate=rate, duration=seconds, body=body, grace=10
        )

    return asyncio.run(go())


def _arrivals(stack: Stack, tag: str) -> dict[str, float]:
    """First arrival at the sink of each recipient of this scenario."""
    arrivals: dict[str, float] = {}
    for message in httpx.get(f"{stack.sink}/messages", timeout=60).json()["messages"]:
        to = message["fields"]["to"][0]
        if tag in to:
            arrivals.setdefault(to, float(message["received_at"]))
    return arrivals


def _wait(predicate: Callable[[], bool], limit: float) -> float:
    start = time.monotonic()
    while not predicate() and time.monotonic() - start < limit:
        time.sleep(0.5)
    return time.monotonic() - start


def _latencies(
    result: Result, arrivals: dict[str, float], tag: str, failing: Callable[[int], bool]
) -> dict[str, Any]:
    healthy = [s for s in result.ok if not failing(s.index)]
    waited = [
        1000 * (arrivals[f"ok-{tag}-{s.index}@example.com"] - s.sent_at)
        for s in healthy
        if f"ok-{tag}-{s.index}@example.com" in arrivals
    ]
    return {
        "accepted": len(result.ok),
        "healthy_accepted": len(healthy),
        "healthy_delivered": len(waited),
        "healthy_latency_ms": phases.percentiles(waited),
        "healthy_over_1s": sum(1 for w in waited if w > 1000),
    }


def retries(systems: phases.Systems, *, moves: bool, rate: float, seconds: float) -> dict[str, Any]:
    aws = systems.queue("hol-retries", bulk=False)
    api, port = systems.api("limbo", aws)
    worker = systems.worker("limbo", aws, env={"RETRY_MOVES": str(moves).lower()})
    tag = uuid.uuid4().hex[:6]
    failing: Callable[[int], bool] = lambda i: i % FAIL_EVERY == FAIL_EVERY - 1  # noqa: E731
    try:
        result = _open_loop(port, rate, seconds, _body(tag, failing))
        healthy = {f"ok-{tag}-{s.index}@example.com" for s in result.ok if not failing(s.index)}
        waited = _wait(lambda: healthy <= set(_arrivals(systems.stack, tag)), 90)
        arrivals = _arrivals(systems.stack, tag)
    finally:
        worker.stop(timeout=15)
        api.stop(timeout=15)
        systems.drop(aws)
    return {
        "mode": "moved (after)" if moves else "in place (before)",
        "rate": rate,
        "seconds": seconds,
        "seconds_until_all_healthy_delivered": round(waited, 1),
        **_latencies(result, arrivals, tag, failing),
    }


def bulk_backlog(
    systems: phases.Systems, *, streams: bool, backlog: int, rate: float, seconds: float
) -> dict[str, Any]:
    aws = systems.queue("hol-bulk", bulk=streams)
    target = aws.bulk_queue_url if streams else aws.queue_url
    started = time.monotonic()
    phases.prefill(
        aws, systems.stack, backlog, "bulk", queue_url=target, owner="newsletters", stream="bulk"
    )
    prefill_seconds = time.monotonic() - started
    phases._clear_sink(systems.stack)
    api, port = systems.api("limbo", aws)
    worker = systems.worker("limbo", aws)
    tag = uuid.uuid4().hex[:6]
    never: Callable[[int], bool] = lambda i: False  # noqa: E731
    try:
        result = _open_loop(port, rate, seconds, _body(tag, never))
        wanted = {f"ok-{tag}-{s.index}@example.com" for s in result.ok}
        _wait(lambda: wanted <= set(_arrivals(systems.stack, tag)), 120)
        arrivals = _arrivals(systems.stack, tag)
        bulk_sent = int(
            httpx.get(f"{systems.stack.sink}/messages?count_only=1", timeout=10).json()["count"]
        ) - len(arrivals)
    finally:
        worker.stop(timeout=15)
        api.stop(timeout=15)
        systems.drop(aws)
    return {
        "mode": "own bulk queue (after)" if streams else "one queue (before)",
        "backlog": backlog,
        "prefill_seconds": round(prefill_seconds, 1),
        "bulk_sent_meanwhile": bulk_sent,
        "rate": rate,
        "seconds": seconds,
        **_latencies(result, arrivals, tag, never),
    }


def api_saturation(systems: phases.Systems, *, rate: float, seconds: float) -> dict[str, Any]:
    """The API's SQS requests per accepted email under heavy load (no worker)."""
    aws = systems.queue("hol-api")
    api, port = systems.api("limbo", aws)
    tag = uuid.uuid4().hex[:6]
    try:
        time.sleep(1)
        reset_counts(systems.stack)
        result = _open_loop(port, rate, seconds, _body(tag, lambda i: False))
        delta = counts(systems.stack)
    finally:
        api.stop(timeout=15)
        systems.drop(aws)
    delta.pop("GetQueueAttributes", None)
    return {
        "rate": rate,
        "accepted": len(result.ok),
        "sqs_requests": delta,
        "sqs_requests_per_email": round(sum(delta.values()) / max(1, len(result.ok)), 3),
    }


def cost(systems: phases.Systems, *, rate: float, seconds: float, failures: bool) -> dict[str, Any]:
    aws = systems.queue("hol-cost")
    api, port = systems.api("limbo", aws)
    worker = systems.worker("limbo", aws, env={"RETRY_BASE_SECONDS": "2"})
    tag = uuid.uuid4().hex[:6]
    failing: Callable[[int], bool] = (
        (lambda i: i % FAIL_EVERY == FAIL_EVERY - 1) if failures else (lambda i: False)
    )
    try:
        time.sleep(2)
        reset_counts(systems.stack)
        result = _open_loop(port, rate, seconds, _body(tag, failing))
        everyone = {
            f"{FAIL_PREFIX if failing(s.index) else 'ok-'}{tag}-{s.index}@example.com"
            for s in result.ok
        }
        _wait(lambda: everyone <= set(_arrivals(systems.stack, tag)), 60)
        delivered = len(_arrivals(systems.stack, tag))
        delta = counts(systems.stack)
    finally:
        worker.stop(timeout=15)
        api.stop(timeout=15)
        systems.drop(aws)
    delta.pop("GetQueueAttributes", None)
    return {
        "rate": rate,
        "seconds": seconds,
        "failures": "3 % fail 3 times" if failures else "none",
        "delivered": delivered,
        "sqs_requests": delta,
        "sqs_requests_per_email": round(sum(delta.values()) / max(1, delivered), 3),
    }


def report(results: dict[str, Any]) -> str:
    lines = [
        f"Run {results['started']} at commit `{results['commit']}`; SQS on "
        f"{results['emulator']}, Mailgun-compatible sink at 50 ms; 2 cores shared by "
        "everything (and by other engineers' work). Command: `./bench/run-streams`.",
        "",
        "## Healthy mail while 3 % of messages fail transiently three times (20 emails/s)",
        "",
        "| Retry | healthy p50 ms | p99 ms | max ms | healthy > 1 s | delivered |",
        "|---|---:|---:|---:|---:|---:|",
    ]
    for r in results["retries"]:
        p = r["healthy_latency_ms"]
        lines.append(
            f"| {r['mode']} | {p['p50']:.0f} | {p['p99']:.0f} | {p['max']:.0f} | "
            f"{r['healthy_over_1s']} | {r['healthy_delivered']}/{r['healthy_accepted']} |"
        )
    lines += [
        "",
        "## Transactional mail at 10 emails/s while a bulk backlog drains",
        "",
        "| Topology | backlog | p50 ms | p99 ms | max ms | > 1 s | delivered | bulk sent "
        "meanwhile |",
        "|---|---:|---:|---:|---:|---:|---:|---:|",
    ]
    for r in results["bulk"]:
        p = r["healthy_latency_ms"]
        lines.append(
            f"| {r['mode']} | {r['backlog']} | {p['p50']:.0f} | {p['p99']:.0f} | "
            f"{p['max']:.0f} | {r['healthy_over_1s']} | "
            f"{r['healthy_delivered']}/{r['healthy_accepted']} | {r['bulk_sent_meanwhile']} |"
        )
    lines += [
        "",
        "## SQS requests per email (API + worker, both streams' pollers)",
        "",
        "| Load | failures | requests/email |",
        "|---|---|---:|",
    ]
    worker, api = results["saturation"], results["api_saturation"]
    lines.append(
        f"| saturation: worker draining {worker['delivered']} pre-filled "
        f"({worker['sqs_requests_per_email']:.3f}) + API at {api['rate']:g}/s "
        f"({api['sqs_requests_per_email']:.3f}) | none | "
        f"{worker['sqs_requests_per_email'] + api['sqs_requests_per_email']:.3f} |"
    )
    for r in results["cost"]:
        lines.append(
            f"| {r['rate']:g}/s for {r['seconds']:g} s | {r['failures']} | "
            f"{r['sqs_requests_per_email']:.3f} |"
        )
    return "\n".join(lines) + "\n"


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__)
    parser.add_argument("--moto", action="store_true", help="SQS on moto, not LocalStack")
    parser.add_argument("--seconds", type=float, default=40)
    parser.add_argument("--backlog", type=int, default=20000)
    parser.add_argument("--out", type=Path, default=BENCH_DIR / "results")
    args = parser.parse_args()
    logs = WORK / "streams-logs"
    import subprocess

    commit = subprocess.run(
        ["git", "rev-parse", "--short", "HEAD"], capture_output=True, text=True, check=False
    ).stdout.strip()
    results: dict[str, Any] = {"started": time.strftime("%Y-%m-%dT%H:%M:%S%z"), "commit": commit}
    with start_stack(
        logs,
        use_localstack=not args.moto,
        sink_config=SinkConfig(latency_ms=50, fail_recipient_prefix=FAIL_PREFIX),
    ) as stack:
        results["emulator"] = stack.emulator
        systems = phases.Systems(stack, logs, env={"AUTH": "disabled"})
        results["retries"] = [
            retries(systems, moves=moves, rate=20, seconds=args.seconds) for moves in (False, True)
        ]
        print(json.dumps(results["retries"], indent=1), flush=True)
        results["bulk"] = [
            bulk_backlog(systems, streams=s, backlog=args.backlog, rate=10, seconds=30)
            for s in (False, True)
        ]
        print(json.dumps(results["bulk"], indent=1), flush=True)
        results["saturation"] = phases.worker_drain(systems, "limbo", count=5000, limit=60)
        results["saturation"].pop("trace", None)
        results["api_saturation"] = api_saturation(systems, rate=400, seconds=10)
        results["cost"] = [cost(systems, rate=30, seconds=30, failures=f) for f in (False, True)]
    args.out.mkdir(parents=True, exist_ok=True)
    stamp = time.strftime("%Y%m%d-%H%M%S")
    (args.out / f"streams-{stamp}.json").write_text(json.dumps(results, indent=1))
    (args.out / "streams.md").write_text(report(results))
    print(report(results))


if __name__ == "__main__":
    main()
