"""``python -m limbo_devtools.tracking_bench``: what message tracking costs.

Starts the emulator, then for each configuration (tracking off, on, on with an
Idempotency-Key on every request, on without the suppression-list check) a fresh queue,
the real API process and a burst of POST /v1/mail from an asyncio httpx load generator;
then a real Mailgun worker drains that queue into a sink. Prints requests/s, drain
messages/s and the status-store calls per message read from each process's own metrics.
moto is far slower than DynamoDB and SQS, so the ratios mean more than the absolute numbers.
"""

from __future__ import annotations

import argparse
import asyncio
import json
import os
import statistics
import tempfile
import time
import uuid
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import boto3
import httpx

from limbo_api.auth import hash_key, mint_key

from .launcher import Launcher
from .local_aws import LocalAws
from .mailgun_sink import SinkConfig

MAIL = {
    "from": "bench@example.com",
    "to": ["to@example.com"],
    "subject": "bench",
    "message": "bench body",
}


@dataclass
class Result:
    name: str
    requests: int
    seconds: float
    latencies: list[float]
    api_store_calls: dict[str, float]
    drained: int
    drain_seconds: float
    worker_store_calls: dict[str, float]

    def row(self) -> dict[str, Any]:
        ordered = sorted(self.latencies)
        return {
            "config": self.name,
            "api_requests_per_s": round(self.requests / self.seconds, 1),
            "p50_ms": round(statistics.median(ordered) * 1000, 1),
            "p99_ms": round(ordered[int(len(ordered) * 0.99) - 1] * 1000, 1),
            "api_store_calls_per_msg": {
                k: round(v / self.requests, 3) for k, v in self.api_store_calls.items()
            },
            "worker_msgs_per_s": round(self.drained / self.drain_seconds, 1),
            "worker_store_calls_per_msg": {
                k: round(v / max(1, self.drained), 3) for k, v in self.worker_store_calls.items()
            },
        }


def store_calls(base_url: str) -> dict[str, float]:
    values = httpx.get(
        f"{base_url}/metrics", headers={"Accept": "application/json"}, timeout=10
    ).json()["values"]
    calls: dict[str, float] = {}
    for name, value in values.items():
        if name.startswith("limbo_status_store_calls_total{"):
            labels = dict(part.split("=", 1) for part in name[name.index("{") + 1 : -1].split(","))
            key = labels["operation"] + ("" if labels["result"] == "ok" else f"/{labels['result']}")
            calls[key] = value
    return calls


async def burst(
    url: str, key: str, count: int, concurrency: int, idempotent: bool
) -> tuple[float, list[float]]:
    latencies: list[float] = []
    remaining = iter(range(count))
    headers = {"Authorization": f"Bearer {key}"}
    limits = httpx.Limits(max_connections=concurrency, max_keepalive_connections=concurrency)
    async with httpx.AsyncClient(
        base_url=url, headers=headers, limits=limits, timeout=30
    ) as client:

        async def user() -> None:
            for i in remaining:
                extra = {"Idempotency-Key": f"bench-{uuid.uuid4()}"} if idempotent else {}
                started = time.perf_counter()
                response = await client.post(
                    "/v1/mail", json={**MAIL, "subject": f"b{i}"}, headers=extra
                )
                latencies.append(time.perf_counter() - started)
                response.raise_for_status()

        started = time.perf_counter()
        await asyncio.gather(*(user() for _ in range(concurrency)))
        return time.perf_counter() - started, latencies


def depth(aws: LocalAws) -> int:
    sqs = boto3.client("sqs", endpoint_url=aws.endpoint, region_name=aws.region)
    attributes = sqs.get_queue_attributes(
        QueueUrl=aws.queue_url,
        AttributeNames=["ApproximateNumberOfMessages", "ApproximateNumberOfMessagesNotVisible"],
    )["Attributes"]
    return sum(int(v) for v in attributes.values())


def run(name: str, launcher: Launcher, args: argparse.Namespace) -> Result:
    tracking = name != "off"
    aws = launcher.provision(
        queue_name=f"b{uuid.uuid4().hex[:10]}.fifo",
        status_table="bench-status" if tracking else None,
    )
    key = mint_key()
    keys = {
        "API_KEYS": f"bench={hash_key(key)}",
        "RATE_LIMIT": "0",
        # "on" checks every recipient against the suppression list (a shared
        # BatchGetItem); "on-nosupp" measures what that check costs.
        "SUPPRESSION": "disabled" if name == "on-nosupp" else "enabled",
    }
    api, url = launcher.start("api", extra={"STATUS_TABLE": aws.status_table or "", **keys})
    try:
        asyncio.run(burst(url, key, args.warmup, args.concurrency, name == "on+key"))
        before = store_calls(url)
        seconds, latencies = asyncio.run(
            burst(url, key, args.requests, args.concurrency, name == "on+key")
        )
        after = store_calls(url)
    finally:
        api.stop()
    api_calls = {k: v - before.get(k, 0.0) for k, v in after.items() if v - before.get(k, 0.0)}
    if args.no_drain:
        return Result(name, args.requests, seconds, latencies, api_calls, 0, 1.0, {})
    total = depth(aws)
    started = time.perf_counter()
    worker, worker_url = launcher.start(
        "mailgun-worker", extra={"STATUS_TABLE": aws.status_table or ""}
    )
    try:
        while depth(aws) > 0:
            time.sleep(0.1)
        drain = time.perf_counter() - started
        worker_calls = store_calls(worker_url)
    finally:
        worker.stop()
    return Result(name, args.requests, seconds, latencies, api_calls, total, drain, worker_calls)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__)
    parser.add_argument("--requests", type=int, default=1000)
    parser.add_argument("--warmup", type=int, default=100)
    parser.add_argument("--concurrency", type=int, default=32)
    parser.add_argument("--rounds", type=int, default=2, help="configurations alternate")
    parser.add_argument(
        "--no-drain", action="store_true", help="measure the API only (no worker drain)"
    )
    parser.add_argument(
        "--configs",
        default="off,on,on+key,on-nosupp",
        help="comma-separated: off, on, on+key, on-nosupp",
    )
    parser.add_argument(
        "--sink-latency-ms",
        type=int,
        default=0,
        help="the provider's answer time (Mailgun is ~100-300 ms)",
    )
    args = parser.parse_args()
    os.environ.setdefault("AWS_ACCESS_KEY_ID", "testing")
    os.environ.setdefault("AWS_SECRET_ACCESS_KEY", "testing")
    logs = Path(tempfile.mkdtemp(prefix="limbo-bench-"))
    launcher = Launcher(
        logs,
        env={"LOG_LEVEL": "warning", "LOG_FORMAT": "json", "WAIT_TIME_SECONDS": "1"},
        mailgun_key="bench-key",
        mailgun_domain="bench.example.com",
    )
    rows = []
    try:
        configs = [name.strip() for name in args.configs.split(",") if name.strip()]
        launcher.emulator()
        launcher.sink(SinkConfig(record=False, latency_ms=args.sink_latency_ms))
        for _ in range(args.rounds):
            for name in configs:
                row = run(name, launcher, args).row()
                print(json.dumps(row), flush=True)
                rows.append(row)
    finally:
        launcher.stop()
    for name in configs:
        mine = [r for r in rows if r["config"] == name]
        print(
            f"{name:9} API {statistics.mean(r['api_requests_per_s'] for r in mine):7.1f} req/s"
            f"   worker {statistics.mean(r['worker_msgs_per_s'] for r in mine):6.1f} msg/s"
        )


if __name__ == "__main__":
    main()
