"""``python -m limbo_bench.trickle``: CPU per email at 10 emails/s, A/B, in a few minutes.

At a trickle every email travels alone, and what a change saves is a tenth of a
millisecond against a machine whose figure for the same code moves by ±15 % from one
minute to the next; so this runs rounds that alternate the variants (this tree as
shipped, ``--env NAME=VALUE`` variants of it, ``--ref REF`` commits), each on a fresh
queue with its own API and worker, and reports per-variant medians. CPU is read from
``/proc/<pid>/task/*/schedstat`` (nanoseconds, every thread) over the sending window
only: the figure ``bench/run`` reports also spans the wait for the last deliveries.
``--profile FILE`` attaches py-spy (``--nonblocking``, 1,000 Hz) to this tree's API in
the first round and writes its raw samples there (``profile_summary.py`` reads them).
"""

from __future__ import annotations

import argparse
import json
import statistics
import subprocess
import sys
import time
import uuid
from pathlib import Path
from typing import Any

from . import phases
from .checkout import checkout
from .procstat import cpu_ns
from .stack import WORK, counts, reset_counts, start_stack


def _round(
    systems: phases.Systems,
    system: str,
    env: dict[str, str],
    args: argparse.Namespace,
    profile: Path | None,
) -> dict[str, Any]:
    aws = systems.queue("trickle")
    api, port = systems.api(system, aws, env)
    worker = systems.worker(system, aws)
    tag = uuid.uuid4().hex[:6]
    spy = None
    try:
        phases.open_loop(port, 5, 1.0, lambda i: f"warm {tag} {i}")
        time.sleep(1.0)
        if profile is not None:
            spy = subprocess.Popen(
                [str(Path(sys.executable).parent / "py-spy"), "record", "--nonblocking",
                 "-r", "1000", "-f", "raw", "-o", str(profile),
                 "-d", str(int(args.seconds)), "-p", str(api.pid)],
                stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL,
            )  # fmt: skip
        reset_counts(systems.stack)
        api_before, worker_before = cpu_ns(api.pid), cpu_ns(worker.pid)
        result = phases.open_loop(port, args.rate, args.seconds, lambda i: f"t {tag} {i}")
        api_after, worker_after = cpu_ns(api.pid), cpu_ns(worker.pid)
        time.sleep(1.5)  # the last deletes wait up to a second for company
        sqs = counts(systems.stack)
        if spy is not None:
            spy.wait(timeout=60)
    finally:
        worker.stop(timeout=15)
        api.stop(timeout=15)
        systems.drop(aws)
    accepted = max(1, len(result.ok))
    latencies = phases.percentiles([1000 * s.latency for s in result.ok])
    return {
        "accepted": len(result.ok),
        "api_cpu_ms_per_email": (api_after - api_before) / 1e6 / accepted,
        "worker_cpu_ms_per_email": (worker_after - worker_before) / 1e6 / accepted,
        "api_latency_ms": latencies,
        "sqs_requests_per_email": sum(sqs.values()) / accepted,
    }


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__)
    parser.add_argument("--ref", action="append", default=[], help="also this commit")
    parser.add_argument(
        "--env", action="append", default=[], help="a variant of this tree: NAME=VALUE[,...]"
    )
    parser.add_argument("--rounds", type=int, default=3)
    parser.add_argument("--rate", type=float, default=10)
    parser.add_argument("--seconds", type=float, default=20)
    parser.add_argument("--profile", type=Path, help="py-spy raw samples of this tree's API")
    args = parser.parse_args()
    # name -> (environment, the other commit's bin directory or None for this tree)
    variants: dict[str, tuple[dict[str, str], Path | None]] = {"this tree": ({}, None)}
    for spec in args.env:
        env = dict(pair.split("=", 1) for pair in spec.split(","))
        variants[spec] = (env, None)
    for ref in args.ref:
        other = checkout(ref)
        variants[other.label] = ({}, other.bin_dir)
    rounds: dict[str, list[dict[str, Any]]] = {name: [] for name in variants}
    logs = WORK / "logs" / f"trickle-{time.strftime('%Y%m%d-%H%M%S')}"
    with start_stack(logs) as stack:
        for index in range(args.rounds):
            for name, (env, bin_dir) in variants.items():
                systems = phases.Systems(stack, logs, env={}, baseline_bin=bin_dir)
                system = "limbo" if bin_dir is None else "baseline"
                profile = args.profile if index == 0 and name == "this tree" else None
                figures = _round(systems, system, env, args, profile)
                rounds[name].append(figures)
                print(name, json.dumps(figures), flush=True)
    print(f"\nmedians of {args.rounds} rounds at {args.rate:g}/s for {args.seconds:g} s:")
    for name, measured in rounds.items():
        api = [f["api_cpu_ms_per_email"] for f in measured]
        worker = statistics.median(f["worker_cpu_ms_per_email"] for f in measured)
        p50 = statistics.median(f["api_latency_ms"]["p50"] for f in measured)
        print(
            f"  {name}: API {statistics.median(api):.2f} ms CPU per email "
            f"({', '.join(f'{v:.2f}' for v in api)}), worker {worker:.2f}, API p50 {p50:.1f} ms"
        )


if __name__ == "__main__":
    main()
