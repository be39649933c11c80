"""``python -m limbo_bench.quiet``: only the quiet phases, in about two minutes.

A trickle (10 emails/s end to end), an idle worker, and 30 emails/s in bursts of 40:
what ``bench/run`` measures at the end of a run, without the saturation phases, to try
a change to polling or batching quickly. ``--ref REF`` runs the same phases against that
commit's limbo (checkout.py) right after. Prints one JSON object and writes it to
``.work/quiet-<time>.json``.
"""

from __future__ import annotations

import argparse
import json
import os
import time
from typing import Any

from . import phases
from .checkout import checkout
from .stack import WORK, start_stack


def _figures(systems: phases.Systems, system: str, args: argparse.Namespace) -> dict[str, Any]:
    trickle = phases.e2e(systems, system, rate=10, seconds=args.trickle_seconds)
    rest = phases.at_rest(systems, system, seconds=args.rest_seconds)
    moderate = phases.moderate(systems, system, rate=30, burst=40, seconds=args.moderate_seconds)
    return {
        "trickle": {
            key: trickle[key]
            for key in (
                "delivered",
                "e2e_latency_ms",
                "sqs_requests",
                "sqs_requests_per_email",
                "api_cpu_ms_per_email",
                "worker_cpu_ms_per_email",
            )
        },
        "at_rest": {key: rest[key] for key in ("sqs_requests", "receives_per_minute")},
        "moderate": {
            key: moderate[key]
            for key in (
                "delivered",
                "sqs_requests",
                "sqs_requests_per_email",
                "api_cpu_ms_per_email",
                "worker_cpu_ms_per_email",
            )
        },
    }


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__)
    parser.add_argument("--ref", help="also this commit's limbo, e.g. HEAD~1")
    parser.add_argument("--trickle-seconds", type=float, default=20)
    parser.add_argument("--rest-seconds", type=float, default=60)
    parser.add_argument("--moderate-seconds", type=float, default=20)
    args = parser.parse_args()
    other = checkout(args.ref) if args.ref else None
    stamp = time.strftime("%Y%m%d-%H%M%S")
    logs = WORK / "logs" / f"quiet-{stamp}"
    results: dict[str, Any] = {"started": stamp, "load_before": os.getloadavg()}
    with start_stack(logs) as stack:
        results["emulator"] = stack.emulator
        results["limbo"] = _figures(phases.Systems(stack, logs, env={}), "limbo", args)
        if other is not None:
            systems = phases.Systems(stack, logs, env={}, baseline_bin=other.bin_dir)
            results[other.label] = _figures(systems, "baseline", args)
    results["load_after"] = os.getloadavg()
    text = json.dumps(results, indent=1)
    (WORK / f"quiet-{stamp}.json").write_text(text)
    print(text)


if __name__ == "__main__":
    main()
