"""limbo-events' Prometheus metrics: labels are sources and outcomes, never addresses."""

from __future__ import annotations

from prometheus_client import Counter, Histogram

__all__ = ["EVENTS", "LAG", "REJECTED", "SUPPRESSIONS"]

EVENTS = Counter(
    "limbo_events_total",
    "Delivery events per recipient, by source, outcome and result "
    "(applied, stale: older than or equal to what is recorded, unknown_message)",
    ["source", "outcome", "result"],
)
REJECTED = Counter(
    "limbo_events_rejected_total",
    "Queue messages refused as not authentic or not an event, by source",
    ["source"],
)
SUPPRESSIONS = Counter(
    "limbo_events_suppressions_total",
    "Addresses suppressed by an event, by source and reason",
    ["source", "reason"],
)
LAG = Histogram(
    "limbo_events_lag_seconds",
    "From the provider's event time to the event applied to the status store",
    ["source"],
    buckets=(0.1, 0.25, 0.5, 1, 2.5, 5, 10, 30, 60, 300, 900, 3600, 21600),
)
