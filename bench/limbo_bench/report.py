"""Turning one run's results into JSON, a Markdown table and PNG plots."""
# ruff: noqa: RUF001 - the table uses typographic signs on purpose

from __future__ import annotations

import json
import re
from collections.abc import Callable
from pathlib import Path
from typing import Any

__all__ = ["summary_rows", "write_report"]

# (label, target text, getter, target test on limbo's value, direction) per row.
Row = tuple[str, str, float | None, float | None, str]


def _get(results: dict[str, Any], path: str) -> Callable[[str], float | None]:
    def value(system: str) -> float | None:
        node: Any = results
        for part in path.replace("{s}", system).split("."):
            if not isinstance(node, dict) or part not in node:
                return None
            node = node[part]
        return float(node) if node is not None else None

    return value


def summary_rows(
    results: dict[str, Any],
) -> list[tuple[str, str, float | None, float | None, bool | None]]:
    focus = results["api_sweep"]["limbo"]["focus"]["offered_per_second"]
    # The ratio target is against the original design; against another commit of limbo
    # only the absolute targets apply.
    worker_ratio_needed = 0.0 if results.get("baseline_is_limbo") else 20.0
    specs: list[tuple[str, str, str, Callable[[float], bool] | None]] = [
        (
            "API accepted requests/s (wrk, 64 connections)",
            "≥ 1,500",
            "api_max.{s}.accepted_per_second",
            lambda v: v >= 1500,
        ),
        (
            f"API p99 latency at {focus:.0f} req/s offered (70 % of limbo's max), ms",
            "≤ 50",
            "api_sweep.{s}.focus.latency_ms.p99",
            lambda v: v <= 50,
        ),
        (
            f"API p50 latency at {focus:.0f} req/s offered, ms",
            "",
            "api_sweep.{s}.focus.latency_ms.p50",
            None,
        ),
        (
            "SQS emulator's own SendMessageBatch p99 at that load (proxy's clock), ms",
            "",
            "api_sweep.{s}.focus.emulator_send_ms.p99",
            None,
        ),
        (
            "API CPU per accepted email at max (ms)",
            "≤ 0.7",
            "api_max.{s}.cpu_ms_per_email",
            lambda v: v <= 0.7,
        ),
        ("API SQS requests per accepted email", "", "api_max.{s}.sqs_requests_per_email", None),
        (
            "Worker emails/s, provider at 50 ms",
            "≥ 500, ≥ 20× baseline",
            "worker.{s}.emails_per_second",
            lambda v: v >= 500,
        ),
        ("Worker CPU per email (ms)", "≤ 1.5", "worker.{s}.cpu_ms_per_email", lambda v: v <= 1.5),
        ("Worker SQS requests per email", "", "worker.{s}.sqs_requests_per_email", None),
        (
            "SQS requests per email at saturation (API + worker)",
            "≤ 0.35",
            "sqs_at_saturation.{s}",
            lambda v: v <= 0.35,
        ),
        (
            "End to end at 10 emails/s, p50 (ms)",
            "≤ 12",
            "e2e.{s}.e2e_latency_ms.p50",
            lambda v: v <= 12,
        ),
        (
            "End to end at 10 emails/s, p99 (ms)",
            "≤ 20",
            "e2e.{s}.e2e_latency_ms.p99",
            lambda v: v <= 20,
        ),
        (
            "SQS requests per email at 10 emails/s (incl. empty polls)",
            "≤ 2.1",
            "e2e.{s}.sqs_requests_per_email",
            lambda v: v <= 2.1,
        ),
        (
            "Worker CPU per email at 10 emails/s (ms)",
            "≤ 3",
            "e2e.{s}.worker_cpu_ms_per_email",
            lambda v: v <= 3,
        ),
        (
            "API CPU per email at 10 emails/s (ms)",
            "≤ 2",
            "e2e.{s}.api_cpu_ms_per_email",
            lambda v: v <= 2,
        ),
        (
            "Idle worker, one queue (no BULK_QUEUE): ReceiveMessage per minute",
            "≤ 3",
            "at_rest_one_queue.{s}.receives_per_minute",
            lambda v: v <= 3,
        ),
        (
            "Idle worker with BULK_QUEUE (two queues): ReceiveMessage per minute",
            "≤ 3 per queue",
            "at_rest.{s}.receives_per_minute",
            lambda v: v <= 6,
        ),
        ("Idle worker: CPU ms per minute", "", "at_rest.{s}.cpu_ms_per_minute", None),
        (
            "SQS requests per email, 30/s in bursts of 40",
            "≤ 0.35",
            "moderate.{s}.sqs_requests_per_email",
            lambda v: v <= 0.35,
        ),
        ("API process: cores used during wrk", "", "api_max.{s}.api_cores_used", None),
        (
            "API main thread: share of time waiting for a core",
            "",
            "api_max.{s}.api_runqueue_wait_fraction",
            None,
        ),
        ("Worker process: cores used while draining", "", "worker.{s}.worker_cores_used", None),
        ("API peak RSS (MB)", "≤ 100", "peak_rss_mb.{s}.api", lambda v: v <= 100),
        ("Worker peak RSS (MB)", "≤ 100", "peak_rss_mb.{s}.worker", lambda v: v <= 100),
    ]
    rows = []
    for label, target, path, test in specs:
        get = _get(results, path)
        limbo, baseline = get("limbo"), get("baseline")
        met = test(limbo) if test is not None and limbo is not None else None
        if path.startswith("worker.{s}.emails") and limbo is not None and baseline:
            met = bool(met) and limbo / baseline >= worker_ratio_needed
        rows.append((label, target, limbo, baseline, met))
    return rows


def _fmt(value: float | None) -> str:
    if value is None:
        return "–"
    if abs(value) >= 100:
        return f"{value:,.0f}"
    if abs(value) >= 10:
        return f"{value:.1f}"
    return f"{value:.2f}"


def markdown(results: dict[str, Any]) -> str:
    lines = [
        f"Run {results['started']} at commit `{results['commit']}`; SQS on "
        f"{results['emulator']}, Mailgun-compatible sink at {results['provider_latency_ms']} ms; "
        f"{results['machine']['cpus']} cores shared by everything (emulator, proxy, sink, load "
        f"generator, limbo). Baseline: {results.get('baseline', 'bench/baseline')}.",
        "",
        "| Metric | Target (limbo) | limbo | baseline | limbo ÷ baseline | Met |",
        "|---|---|---:|---:|---:|:---:|",
    ]
    for label, target, limbo, baseline, met in summary_rows(results):
        ratio = _fmt(limbo / baseline) + "×" if limbo is not None and baseline else "–"
        mark = "–" if met is None else ("yes" if met else "**no**")
        lines.append(
            f"| {label} | {target} | {_fmt(limbo)} | {_fmt(baseline)} | {ratio} | {mark} |"
        )
    ses = results.get("ses_worker")
    if ses:
        lines += [
            "",
            f"SES path (limbo's SES worker against moto's SES v2, no injected latency): "
            f"{_fmt(ses['emails_per_second'])} emails/s, "
            f"{_fmt(ses['cpu_ms_per_email'])} ms CPU per email, "
            f"{ses['delivered']} of {ses['target']} delivered.",
        ]
    for note in results.get("notes", []):
        lines += ["", f"Note: {note}"]
    return "\n".join(lines) + "\n"


def median_markdown(runs: list[dict[str, Any]]) -> str:
    """One table of medians over several runs (each figure's median on its own)."""
    import statistics

    per_run = [summary_rows(results) for results in runs]
    lines = [
        f"Median of {len(runs)} runs ({runs[0]['started']} to {runs[-1]['finished']}) at commit "
        f"`{runs[-1]['commit']}`; SQS on {runs[-1]['emulator']}, Mailgun-compatible sink at "
        f"{runs[-1]['provider_latency_ms']} ms; {runs[-1]['machine']['cpus']} cores shared by "
        "everything. Ratio = median of the per-run ratios; range = limbo's lowest and highest.",
        "",
        "| Metric | Target (limbo) | limbo | baseline | limbo ÷ baseline | limbo range | Met |",
        "|---|---|---:|---:|---:|---:|:---:|",
    ]
    for index, (label, target, *_rest) in enumerate(per_run[-1]):
        limbos = [v for rows in per_run if (v := rows[index][2]) is not None]
        baselines = [v for rows in per_run if (v := rows[index][3]) is not None]
        ratios = [
            a / b for rows in per_run if (a := rows[index][2]) is not None and (b := rows[index][3])
        ]
        mets = [m for rows in per_run if (m := rows[index][4]) is not None]
        limbo = statistics.median(limbos) if limbos else None
        baseline = statistics.median(baselines) if baselines else None
        ratio = _fmt(statistics.median(ratios)) + "×" if ratios else "–"
        span = f"{_fmt(min(limbos))}–{_fmt(max(limbos))}" if limbos else "–"
        met = "–" if not mets else f"{sum(mets)}/{len(mets)} runs"
        label = re.sub(
            r"at \d+ req/s offered( \(70 % of limbo's max\))?", "at 70 % of limbo's max", label
        )
        lines.append(
            f"| {label} | {target} | {_fmt(limbo)} | {_fmt(baseline)} | {ratio} | {span} | {met} |"
        )
    return "\n".join(lines) + "\n"


def plot(results: dict[str, Any], out: Path) -> None:
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    colors = {"limbo": "tab:blue", "baseline": "tab:orange"}
    fig, axes = plt.subplots(1, 2, figsize=(11, 4.2))
    for system, color in colors.items():
        focus = results["api_sweep"][system]["focus"]
        values = sorted(focus.get("latencies_ms", []))
        if values:
            axes[0].plot(
                values,
                [i / len(values) for i in range(len(values))],
                color=color,
                label=f"{system} (p99 {_fmt(focus['latency_ms']['p99'])} ms)",
            )
        e2e = sorted(results["e2e"][system].get("e2e_latencies_ms", []))
        if e2e:
            p50 = _fmt(results["e2e"][system]["e2e_latency_ms"]["p50"])
            axes[1].plot(
                e2e,
                [i / len(e2e) for i in range(len(e2e))],
                color=color,
                label=f"{system} (p50 {p50} ms)",
            )
    rate = results["api_sweep"]["limbo"]["focus"]["offered_per_second"]
    axes[0].set(
        title=f"API latency at {rate:.0f} req/s offered",
        xlabel="ms (log)",
        ylabel="fraction of requests",
        xscale="log",
    )
    axes[1].set(
        title="POST → provider at 10 emails/s",
        xlabel="ms (log)",
        ylabel="fraction of emails",
        xscale="log",
    )
    for axis in axes:
        axis.grid(True, which="both", alpha=0.3)
        axis.legend()
    fig.tight_layout()
    fig.savefig(out / "latency.png", dpi=110)
    plt.close(fig)

    fig, axes = plt.subplots(1, 2, figsize=(11, 4.2))
    for system, color in colors.items():
        points = results["api_sweep"][system]["points"]
        offered = [p["offered_per_second"] for p in points]
        axes[0].plot(
            offered, [p["achieved_per_second"] for p in points], "o-", color=color, label=system
        )
        axes[1].plot(
            offered,
            [p["latency_ms"]["p99"] or float("nan") for p in points],
            "o-",
            color=color,
            label=system,
        )
    top = max(p["offered_per_second"] for p in results["api_sweep"]["limbo"]["points"])
    axes[0].plot([0, top], [0, top], ":", color="grey", label="offered = accepted")
    axes[0].set(
        title="API: accepted vs offered load",
        xlabel="offered req/s",
        ylabel="accepted req/s (answered within the run)",
    )
    axes[1].set(
        title="API: p99 latency vs offered load",
        xlabel="offered req/s",
        ylabel="p99 ms (log)",
        yscale="log",
    )
    axes[1].axhline(50, color="grey", linestyle=":", label="target 50 ms")
    for axis in axes:
        axis.grid(True, which="both", alpha=0.3)
        axis.legend()
    fig.tight_layout()
    fig.savefig(out / "throughput.png", dpi=110)
    plt.close(fig)


def write_report(results: dict[str, Any], out: Path, stamp: str, *, plots: bool = True) -> None:
    text = json.dumps(results, indent=1)
    (out / f"run-{stamp}.json").write_text(text)
    (out / "latest.json").write_text(text)
    (out / "summary.md").write_text(markdown(results))
    if plots:
        plot(results, out)


def main() -> None:
    """``python -m limbo_bench.report RUN.json...``: summary.md with the medians of those runs."""
    import sys

    paths = [Path(arg) for arg in sys.argv[1:]]
    runs = [json.loads(path.read_text()) for path in sorted(paths)]
    out = paths[0].parent / "summary.md"
    out.write_text(median_markdown(runs) if len(runs) > 1 else markdown(runs[0]))
    print(out.read_text())


if __name__ == "__main__":
    main()
