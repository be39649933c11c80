"""``python -m limbo_bench.api_variants``: what tracing and logging cost the API.

Runs wrk against limbo-api as shipped, with tracing off (``OTEL_SDK_DISABLED=true``),
with logging at warning (no line per accepted request), and with both, alternating
twice, and writes ``results/api-variants.md``. ``--ref REF`` (repeatable) adds that
commit's limbo-api as shipped (checkout.py), in the same rounds. CPU per accepted email is the
figure to read; requests/s also depends on how much of a core the process got (shown).
"""

from __future__ import annotations

import argparse
import statistics
from pathlib import Path

from . import phases
from .checkout import checkout
from .stack import BENCH_DIR, WORK, start_stack

VARIANTS: dict[str, dict[str, str]] = {
    "as shipped": {},
    "tracing off": {"OTEL_SDK_DISABLED": "true"},
    "logging at warning": {"LOG_LEVEL": "warning"},
    "both": {"OTEL_SDK_DISABLED": "true", "LOG_LEVEL": "warning"},
}


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__)
    parser.add_argument(
        "--ref", action="append", default=[], help="also this commit's limbo-api (e.g. HEAD~1)"
    )
    parser.add_argument("--rounds", type=int, default=2)
    args = parser.parse_args()
    # name -> (environment, the other commit's bin directory or None for this one)
    variants: dict[str, tuple[dict[str, str], Path | None]] = {
        name: (env, None) for name, env in VARIANTS.items()
    }
    for ref in reversed(args.ref):
        other = checkout(ref)
        variants = {f"{other.label} as shipped": ({}, other.bin_dir), **variants}
    results: dict[str, list[dict[str, float]]] = {name: [] for name in variants}
    logs = WORK / "logs" / "api-variants"
    with start_stack(logs) as stack:
        for _ in range(args.rounds):
            for name, (env, bin_dir) in variants.items():
                systems = phases.Systems(stack, logs, env=env, baseline_bin=bin_dir)
                aws = systems.queue("variant")
                process, port = systems.api("limbo" if bin_dir is None else "baseline", aws)
                figures = phases.api_max(systems, "limbo", process, port, seconds=8)
                process.stop(timeout=15)
                systems.drop(aws)
                results[name].append(figures)
                print(
                    name,
                    round(figures["accepted_per_second"]),
                    round(figures["cpu_ms_per_email"], 3),
                    flush=True,
                )
    lines = [
        "| limbo-api variant | CPU ms per accepted email | accepted/s | cores used "
        "| waiting for a core |",
        "|---|---:|---:|---:|---:|",
    ]
    for name, runs in results.items():

        def median(key: str, runs: list[dict[str, float]] = runs) -> float:
            return statistics.median(run[key] for run in runs)

        lines.append(
            f"| {name} | {median('cpu_ms_per_email'):.2f} | "
            f"{median('accepted_per_second'):.0f} | {median('api_cores_used'):.2f} | "
            f"{median('api_runqueue_wait_fraction'):.2f} |"
        )
    text = (
        f"wrk, 64 connections, 8 s per variant, {args.rounds} alternating rounds, medians.\n\n"
        + "\n".join(lines)
        + "\n"
    )
    out: Path = BENCH_DIR / "results" / "api-variants.md"
    out.write_text(text)
    print(text)


if __name__ == "__main__":
    main()
