"""``python -m limbo_bench``: one full benchmark run, limbo and the baseline side by side.

Writes ``run-<time>.json`` and ``latest.json``, ``summary.md`` (limbo, baseline, ratio)
and the PNG plots into the output folder (``bench/results/`` by default).
"""

from __future__ import annotations

import argparse
import json
import os
import platform
import subprocess
import time
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from . import phases
from .checkout import Checkout, checkout
from .procstat import sample
from .stack import BENCH_DIR, WORK, start_stack


@dataclass(frozen=True)
class Sizes:
    """How long and how big each phase is; ``--quick`` is the CI-sized smoke run."""

    wrk_seconds: float
    sweep_seconds: float
    focus_seconds: float
    drain_count: int
    baseline_drain_count: int
    drain_limit: float
    ses_count: int
    e2e_seconds: float
    rest_seconds: float
    moderate_seconds: float


FULL = Sizes(
    wrk_seconds=10,
    sweep_seconds=4,
    focus_seconds=10,
    drain_count=15000,
    baseline_drain_count=400,
    drain_limit=60,
    ses_count=2000,
    e2e_seconds=30,
    rest_seconds=60,
    moderate_seconds=20,
)
QUICK = Sizes(
    wrk_seconds=2,
    sweep_seconds=1,
    focus_seconds=2,
    drain_count=300,
    baseline_drain_count=20,
    drain_limit=15,
    ses_count=50,
    e2e_seconds=2,
    rest_seconds=5,
    moderate_seconds=3,
)
SWEEP_FRACTIONS = (0.25, 0.5, 0.85, 1.0, 1.25)
FOCUS_FRACTION = 0.7


def _git_commit() -> str:
    try:
        return subprocess.run(
            ["git", "rev-parse", "--short", "HEAD"],
            capture_output=True,
            text=True,
            cwd=BENCH_DIR,
            check=True,
        ).stdout.strip()
    except (OSError, subprocess.CalledProcessError):
        return "unknown"


def run(
    out: Path,
    sizes: Sizes,
    *,
    use_localstack: bool,
    plots: bool,
    baseline: Checkout | None = None,
) -> dict[str, Any]:
    """One run; ``baseline`` is another commit of limbo to compare with (by default the
    original design in bench/baseline/)."""
    stamp = time.strftime("%Y%m%d-%H%M%S")
    logs = WORK / "logs" / stamp
    results: dict[str, Any] = {
        "started": time.strftime("%Y-%m-%dT%H:%M:%S%z"),
        "commit": _git_commit(),
        "machine": {
            "cpus": os.cpu_count(),
            "python": platform.python_version(),
            "load_before": os.getloadavg(),
        },
        "sizes": sizes.__dict__,
        "baseline": baseline.label if baseline else "bench/baseline (the original design)",
        "baseline_is_limbo": baseline is not None,
        "provider_latency_ms": 50,
    }
    with start_stack(logs) if use_localstack else start_stack(logs, use_localstack=False) as stack:
        results["emulator"] = stack.emulator
        results["notes"] = stack.notes
        systems = phases.Systems(
            stack, logs, env={}, baseline_bin=baseline.bin_dir if baseline else None
        )
        order = ("limbo", "baseline")

        print("bench: API maximum throughput (wrk)", flush=True)
        results["api_max"] = {}
        for system in order:
            aws = systems.queue(f"{system}-api")
            process, port = systems.api(system, aws)
            results["api_max"][system] = phases.api_max(
                systems, system, process, port, seconds=sizes.wrk_seconds
            )
            results["api_max"][system]["peak_rss_mb"] = sample(process.pid).peak_rss_mb
            process.stop(timeout=15)
            systems.drop(aws)
        peak = results["api_max"]["limbo"]["accepted_per_second"]
        print(f"bench: limbo API {peak:.0f}/s; latency sweep (open loop)", flush=True)
        rates = [round(f * peak) for f in SWEEP_FRACTIONS]
        focus = round(FOCUS_FRACTION * peak)
        results["api_sweep"] = {}
        for system in order:
            # A fresh process and queue: the sweep starts from the same state as wrk did.
            aws = systems.queue(f"{system}-sweep")
            process, port = systems.api(system, aws)
            results["api_sweep"][system] = phases.api_sweep(
                systems,
                system,
                process,
                port,
                rates,
                seconds=sizes.sweep_seconds,
                focus_rate=focus,
                focus_seconds=sizes.focus_seconds,
            )
            results["api_sweep"][system]["peak_rss_mb"] = sample(process.pid).peak_rss_mb
            process.stop(timeout=15)
            systems.drop(aws)

        print("bench: worker throughput (pre-filled queue, provider at 50 ms)", flush=True)
        results["worker"] = {
            "limbo": phases.worker_drain(
                systems, "limbo", count=sizes.drain_count, limit=sizes.drain_limit
            ),
            # The original design drains a few hundred in the time limbo drains 15,000.
            "baseline": phases.worker_drain(
                systems, "baseline", count=sizes.drain_count, limit=sizes.drain_limit
            )
            if baseline
            else phases.worker_drain(
                systems, "baseline", count=sizes.baseline_drain_count, limit=sizes.drain_limit / 3
            ),
        }
        print("bench: SES worker (moto SES)", flush=True)
        results["ses_worker"] = phases.ses_drain(
            systems, count=sizes.ses_count, limit=sizes.drain_limit
        )
        print("bench: end to end at 10 emails/s", flush=True)
        results["e2e"] = {
            system: phases.e2e(systems, system, rate=10, seconds=sizes.e2e_seconds)
            for system in order
        }
        print("bench: an idle worker, then 30 emails/s in bursts of 40", flush=True)
        results["at_rest"] = {
            system: phases.at_rest(systems, system, seconds=sizes.rest_seconds) for system in order
        }
        results["at_rest_one_queue"] = {
            system: phases.at_rest(systems, system, seconds=sizes.rest_seconds, bulk=False)
            for system in order
        }
        results["moderate"] = {
            system: phases.moderate(
                systems, system, rate=30, burst=40, seconds=sizes.moderate_seconds
            )
            for system in order
        }
        results["peak_rss_mb"] = {
            system: {
                "api": max(
                    results["api_max"][system]["peak_rss_mb"],
                    results["api_sweep"][system]["peak_rss_mb"],
                    results["e2e"][system]["api_peak_rss_mb"],
                ),
                "worker": max(
                    results["worker"][system]["peak_rss_mb"],
                    results["e2e"][system]["worker_peak_rss_mb"],
                ),
            }
            for system in order
        }
        results["sqs_at_saturation"] = {
            system: results["api_max"][system]["sqs_requests_per_email"]
            + results["worker"][system]["sqs_requests_per_email"]
            for system in order
        }
    results["finished"] = time.strftime("%Y-%m-%dT%H:%M:%S%z")
    out.mkdir(parents=True, exist_ok=True)
    from .report import write_report

    write_report(results, out, stamp, plots=plots)
    return results


def _median_summary(out: Path, runs: list[dict[str, Any]]) -> None:
    from .report import median_markdown

    text = median_markdown(runs)
    (out / "summary.md").write_text(text)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__)
    parser.add_argument("--out", type=Path, default=BENCH_DIR / "results")
    parser.add_argument("--quick", action="store_true", help="a CI-sized smoke run (~1 minute)")
    parser.add_argument("--moto", action="store_true", help="use moto for SQS, not LocalStack")
    parser.add_argument("--no-plots", action="store_true", help="skip matplotlib")
    parser.add_argument(
        "--baseline-ref",
        help="compare with this commit of limbo (e.g. HEAD~1), run from a git worktree "
        "with its own venv under .work/refs, instead of bench/baseline/",
    )
    parser.add_argument(
        "--runs",
        type=int,
        default=1,
        help="repeat the whole run; summary.md then shows the medians",
    )
    args = parser.parse_args()
    baseline = checkout(args.baseline_ref) if args.baseline_ref else None
    all_results = []
    for index in range(args.runs):
        if args.runs > 1:
            print(f"bench: run {index + 1} of {args.runs}", flush=True)
        all_results.append(
            run(
                args.out,
                QUICK if args.quick else FULL,
                use_localstack=not args.moto,
                plots=not args.no_plots,
                baseline=baseline,
            )
        )
    if args.runs > 1:
        _median_summary(args.out, all_results)
    print((args.out / "summary.md").read_text())
    print(json.dumps({"sqs_at_saturation": all_results[-1]["sqs_at_saturation"]}))


if __name__ == "__main__":
    main()
