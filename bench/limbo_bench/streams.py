"""``python -m limbo_bench.streams``: head-of-line blocking, before and after, same run.

Three scenarios, each on fresh queues and one API:

- **retries** (two Mailgun workers): emails at 20/s from one key, 3 % of them to
  recipients the sink fails three times (500) before accepting; healthy mail's
  POST-to-provider latency with nobody failing (the healthy path's own figure, the
  yardstick), with the old in-place retry (``RETRY_MOVES=false``: the message waits in
  its FIFO group) and with retries moved out of their group (the default). Each figure
  is split at the API's answer, so a tail is placed: before it (the API and its SQS
  send) or after it (the queue and the worker).
- **bulk backlog** (one worker): a bulk backlog queued, transactional mail at 10/s while it drains;
  before = one queue for both (no ``BULK_QUEUE``), after = the bulk stream's own queue.
- **cost**: SQS requests per email (counted by the proxy) at saturation, and at 30/s
  with and without failures.

Writes ``streams-<time>.json`` and ``streams.md`` into ``bench/results/``.
"""

from __future__ import annotations

import argparse
import asyncio
import json
import os
import sys
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
RETRY_WORKERS = 2  # as the issue measured it: one key's mail into two workers
SCENARIOS = ("retries", "bulk", "cost")


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
    """Healthy mail's POST-to-provider latency, and its two halves: until the API
    answered (validation and the SQS send) and from the answer to the provider (queue
    and worker), so a tail can be placed."""
    healthy = [s for s in result.ok if not failing(s.index)]
    delivered = [
        (s, arrivals[f"ok-{tag}-{s.index}@example.com"])
        for s in healthy
        if f"ok-{tag}-{s.index}@example.com" in arrivals
    ]
    waited = [1000 * (arrived - s.sent_at) for s, arrived in delivered]
    return {
        "accepted": len(result.ok),
        "healthy_accepted": len(healthy),
        "healthy_delivered": len(waited),
        "healthy_latency_ms": phases.percentiles(waited),
        "healthy_answer_ms": phases.percentiles([1000 * s.latency for s, _ in delivered]),
        "healthy_after_answer_ms": phases.percentiles(
            [1000 * (arrived - s.sent_at - s.latency) for s, arrived in delivered]
        ),
        "healthy_over_1s": sum(1 for w in waited if w > 1000),
    }


RETRY_MODES = {
    "none": "no failures (healthy path)",
    "in_place": "in place (before)",
    "moved": "moved (after)",
}


def retries(systems: phases.Systems, *, mode: str, rate: float, seconds: float) -> dict[str, Any]:
    """``mode``: ``none`` (nobody fails: the healthy path's own figure, the yardstick),
    ``in_place`` (``RETRY_MOVES=false``) or ``moved``."""
    aws = systems.queue("hol-retries", bulk=False)
    api, port = systems.api("limbo", aws)
    moves = {"RETRY_MOVES": "false" if mode == "in_place" else "true"}
    workers = [systems.worker("limbo", aws, env=moves) for _ in range(RETRY_WORKERS)]
    tag = uuid.uuid4().hex[:6]
    failing: Callable[[int], bool] = (
        (lambda i: i % FAIL_EVERY == FAIL_EVERY - 1) if mode != "none" else (lambda i: False)
    )
    try:
        result = _open_loop(port, rate, seconds, _body(tag, failing))
        healthy = {f"ok-{tag}-{s.index}@example.com" for s in result.ok if not failing(s.index)}
        waited = _wait(lambda: healthy <= set(_arrivals(systems.stack, tag)), 90)
        arrivals = _arrivals(systems.stack, tag)
    finally:
        for worker in workers:
            worker.stop(timeout=15)
        api.stop(timeout=15)
        systems.drop(aws)
    return {
        "mode": RETRY_MODES[mode],
        "workers": RETRY_WORKERS,
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


def _retries_table(rows: list[dict[str, Any]]) -> list[str]:
    lines = [
        "## Healthy mail while 3 % of messages fail transiently three times (20 emails/s)",
        "",
        "POST-to-provider of the mail nobody fails, and its two halves: due time to the",
        "API's answer (validation, the SQS send), and answer to the provider (queue, worker).",
        "",
        "| Retry | workers | p50 ms | p99 ms | max ms | > 1 s | answer p99 ms | "
        "after answer p99 ms | delivered |",
        "|---|---:|---:|---:|---:|---:|---:|---:|---:|",
    ]
    for r in rows:
        p = r["healthy_latency_ms"]
        answer = r.get("healthy_answer_ms", {}).get("p99", float("nan"))
        after = r.get("healthy_after_answer_ms", {}).get("p99", float("nan"))
        lines.append(
            f"| {r['mode']} | {r.get('workers', 1)} | {p['p50']:.0f} | {p['p99']:.0f} | "
            f"{p['max']:.0f} | {r['healthy_over_1s']} | {answer:.0f} | {after:.0f} | "
            f"{r['healthy_delivered']}/{r['healthy_accepted']} |"
        )
    return [*lines, ""]


def _bulk_table(rows: list[dict[str, Any]]) -> list[str]:
    lines = [
        "## Transactional mail at 10 emails/s while a bulk backlog drains",
        "",
        "| Topology | backlog | p50 ms | p99 ms | max ms | > 1 s | delivered | bulk sent "
        "meanwhile |",
        "|---|---:|---:|---:|---:|---:|---:|---:|",
    ]
    for r in rows:
        p = r["healthy_latency_ms"]
        lines.append(
            f"| {r['mode']} | {r['backlog']} | {p['p50']:.0f} | {p['p99']:.0f} | "
            f"{p['max']:.0f} | {r['healthy_over_1s']} | "
            f"{r['healthy_delivered']}/{r['healthy_accepted']} | {r['bulk_sent_meanwhile']} |"
        )
    return [*lines, ""]


def _cost_table(results: dict[str, Any]) -> list[str]:
    lines = [
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
    return [*lines, ""]


def report(results: dict[str, Any]) -> str:
    """The Markdown summary of whichever scenarios ran."""
    lines = [
        f"Run {results['started']} at commit `{results['commit']}`; SQS on "
        f"{results['emulator']}, Mailgun-compatible sink at 50 ms; 2 cores shared by "
        "everything (and by other engineers' work), load average "
        f"{results.get('load_average', '?')} at the start. "
        f"Command: `{results.get('command', './bench/run-streams')}`.",
        "",
    ]
    if "retries" in results:
        lines += _retries_table(results["retries"])
    if "bulk" in results:
        lines += _bulk_table(results["bulk"])
    if "cost" in results:
        lines += _cost_table(results)
    return "\n".join(lines)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__)
    parser.add_argument("--moto", action="store_true", help="SQS on moto, not LocalStack")
    parser.add_argument("--seconds", type=float, default=40)
    parser.add_argument("--backlog", type=int, default=20000)
    parser.add_argument(
        "--only",
        choices=SCENARIOS,
        action="append",
        help="run only this scenario (repeatable); results go to streams-<names>.md",
    )
    parser.add_argument("--out", type=Path, default=BENCH_DIR / "results")
    args = parser.parse_args()
    chosen = [name for name in SCENARIOS if name in (args.only or SCENARIOS)]
    logs = WORK / "streams-logs"
    import subprocess

    commit = subprocess.run(
        ["git", "rev-parse", "--short", "HEAD"], capture_output=True, text=True, check=False
    ).stdout.strip()
    results: dict[str, Any] = {
        "started": time.strftime("%Y-%m-%dT%H:%M:%S%z"),
        "commit": commit,
        "command": " ".join(["./bench/run-streams", *sys.argv[1:]]),
        "load_average": round(os.getloadavg()[0], 1),
    }
    with start_stack(
        logs,
        use_localstack=not args.moto,
        sink_config=SinkConfig(latency_ms=50, fail_recipient_prefix=FAIL_PREFIX),
    ) as stack:
        results["emulator"] = stack.emulator
        systems = phases.Systems(stack, logs, env={"AUTH": "disabled"})
        if "retries" in chosen:
            results["retries"] = [
                retries(systems, mode=mode, rate=20, seconds=args.seconds) for mode in RETRY_MODES
            ]
            print(json.dumps(results["retries"], indent=1), flush=True)
        if "bulk" in chosen:
            results["bulk"] = [
                bulk_backlog(systems, streams=s, backlog=args.backlog, rate=10, seconds=30)
                for s in (False, True)
            ]
            print(json.dumps(results["bulk"], indent=1), flush=True)
        if "cost" in chosen:
            results["saturation"] = phases.worker_drain(systems, "limbo", count=5000, limit=60)
            results["saturation"].pop("trace", None)
            results["api_saturation"] = api_saturation(systems, rate=400, seconds=10)
            results["cost"] = [
                cost(systems, rate=30, seconds=30, failures=f) for f in (False, True)
            ]
    args.out.mkdir(parents=True, exist_ok=True)
    stamp = time.strftime("%Y%m%d-%H%M%S")
    name = "streams" if chosen == list(SCENARIOS) else "streams-" + "-".join(chosen)
    (args.out / f"{name}-{stamp}.json").write_text(json.dumps(results, indent=1))
    (args.out / f"{name}.md").write_text(report(results))
    print(report(results))


if __name__ == "__main__":
    main()
