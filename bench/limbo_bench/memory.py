"""``python -m limbo_bench.memory``: what limbo's processes hold, at rest and at peak.

Peak RSS (``VmHWM``) of limbo-api right after start-up and after wrk at saturation, and
of limbo-mailgun-worker after draining a pre-filled queue, for this tree and, with
``--ref REF``, that commit, alternating for ``--rounds``; writes
``results/memory.md`` with the medians. Stack and phases are ``bench/run``'s.
"""

from __future__ import annotations

import argparse
import statistics
import time
from pathlib import Path

from . import phases
from .checkout import checkout
from .procstat import sample
from .stack import BENCH_DIR, WORK, start_stack


def _round(systems: phases.Systems, system: str, drain: int) -> dict[str, float]:
    aws = systems.queue(f"{system}-memory")
    api, port = systems.api(system, aws)
    try:
        time.sleep(1.0)
        started = sample(api.pid).peak_rss_mb
        phases.api_max(systems, system, api, port, seconds=8)
        loaded = sample(api.pid).peak_rss_mb
    finally:
        api.stop(timeout=15)
        systems.drop(aws)
    worker = phases.worker_drain(systems, system, count=drain, limit=60)
    return {
        "api_started_mb": started,
        "api_peak_mb": loaded,
        "worker_peak_mb": float(worker["peak_rss_mb"]),
    }


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__)
    parser.add_argument("--ref", help="also this commit's limbo, e.g. HEAD~1")
    parser.add_argument("--rounds", type=int, default=2)
    parser.add_argument("--drain", type=int, default=3000, help="messages the worker drains")
    args = parser.parse_args()
    other = checkout(args.ref) if args.ref else None
    logs = WORK / "logs" / f"memory-{time.strftime('%Y%m%d-%H%M%S')}"
    runs: dict[str, list[dict[str, float]]] = {"this tree": []}
    if other is not None:
        runs[other.label] = []
    with start_stack(logs) as stack:
        for _ in range(args.rounds):
            runs["this tree"].append(
                _round(phases.Systems(stack, logs, env={}), "limbo", args.drain)
            )
            if other is not None:
                systems = phases.Systems(stack, logs, env={}, baseline_bin=other.bin_dir)
                runs[other.label].append(_round(systems, "baseline", args.drain))
            print({name: figures[-1] for name, figures in runs.items()}, flush=True)
    lines = [
        "| limbo | API after start-up, MB | API peak under wrk, MB | worker peak draining, MB |",
        "|---|---:|---:|---:|",
    ]
    for name, figures in runs.items():
        cells = [
            f"{statistics.median(f[key] for f in figures):.1f}"
            for key in ("api_started_mb", "api_peak_mb", "worker_peak_mb")
        ]
        lines.append(f"| {name} | " + " | ".join(cells) + " |")
    text = (
        f"Peak RSS (VmHWM), medians of {args.rounds} alternating rounds; wrk 64 connections "
        f"for 8 s after a 3 s warm-up; the worker drains {args.drain} messages.\n\n"
        + "\n".join(lines)
        + "\n"
    )
    out: Path = BENCH_DIR / "results" / "memory.md"
    out.write_text(text)
    print(text)


if __name__ == "__main__":
    main()
