"""``limbo-chaos``: the fault-injection run as a command; defaults are ChaosConfig's."""

from __future__ import annotations

import argparse
import json
import os
import signal
import sys
from dataclasses import asdict
from pathlib import Path

from . import __doc__ as DESCRIPTION
from .config import ChaosConfig
from .run import run_chaos

__all__ = ["main"]


def _pair(text: str) -> tuple[float, float]:
    low, _, high = text.partition(",")
    return float(low), float(high or low)


def main(argv: list[str] | None = None) -> None:
    defaults = ChaosConfig()
    parser = argparse.ArgumentParser(
        prog="limbo-chaos",
        description=DESCRIPTION,
        formatter_class=argparse.RawDescriptionHelpFormatter,
    )
    parser.add_argument("--emails", type=int, default=defaults.emails)
    parser.add_argument("--workers", type=int, default=defaults.workers)
    parser.add_argument(
        "--kill-every",
        type=_pair,
        default=defaults.kill_every,
        metavar="LOW,HIGH",
        help="seconds between two SIGKILLs, drawn uniformly (default %(default)s)",
    )
    parser.add_argument(
        "--concurrency", type=int, default=defaults.concurrency, help="CONCURRENCY per worker"
    )
    parser.add_argument(
        "--clients", type=int, default=defaults.clients, help="parallel submitting clients"
    )
    parser.add_argument(
        "--backlog",
        type=int,
        default=defaults.backlog,
        help="pause submitting while the queue holds more (default %(default)s)",
    )
    parser.add_argument(
        "--endpoint",
        default=defaults.endpoint,
        help="an emulator already running (default: start limbo-moto)",
    )
    parser.add_argument(
        "--env",
        action="append",
        default=[],
        metavar="NAME=VALUE",
        help="extra environment for the API and workers, e.g. STATUS_TABLE=...",
    )
    parser.add_argument("--seed", type=int, default=defaults.seed)
    parser.add_argument("--settle-timeout", type=float, default=defaults.settle_timeout)
    parser.add_argument("--logs", type=Path, default=defaults.logs, help="where process logs go")
    parser.add_argument("--json", action="store_true", help="print the report as JSON")
    args = parser.parse_args(argv)
    for name, value in (("AWS_ACCESS_KEY_ID", "testing"), ("AWS_SECRET_ACCESS_KEY", "testing")):
        os.environ.setdefault(name, value)
    config = ChaosConfig(
        emails=args.emails,
        workers=args.workers,
        kill_every=args.kill_every,
        concurrency=args.concurrency,
        clients=args.clients,
        backlog=args.backlog,
        endpoint=args.endpoint,
        env=dict(item.split("=", 1) for item in args.env),
        seed=args.seed,
        settle_timeout=args.settle_timeout,
        logs=args.logs,
        progress=not args.json,
    )
    # SIGTERM (e.g. a CI time-out) tears the processes down like Ctrl-C does.
    signal.signal(signal.SIGTERM, lambda *_: (_ for _ in ()).throw(KeyboardInterrupt()))
    report, _ = run_chaos(config)
    if args.json:
        data = asdict(report)
        data["problems"] = report.problems()
        print(json.dumps(data, indent=2))
    else:
        print(report.render())
    sys.exit(1 if report.problems() else 0)
