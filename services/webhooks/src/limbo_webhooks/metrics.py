"""Prometheus metrics of deliveries (module level: registered once per process)."""

from __future__ import annotations

from prometheus_client import Counter, Histogram

__all__ = ["ATTEMPTS", "ATTEMPT_SECONDS", "DELIVERY_LAG", "DISABLED", "JOBS"]

ATTEMPTS = Counter(
    "limbo_webhook_attempts_total",
    "Webhook attempts, by outcome (ok, http_error, timeout, connect_error, blocked...)",
    ["outcome"],
)
ATTEMPT_SECONDS = Histogram(
    "limbo_webhook_attempt_seconds",
    "Duration of one webhook attempt",
    buckets=(0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1, 2.5, 5, 10),
)
DELIVERY_LAG = Histogram(
    "limbo_webhook_delivery_lag_seconds",
    "Status change to webhook accepted by the endpoint (retries included)",
    buckets=(0.05, 0.1, 0.25, 0.5, 1, 2.5, 5, 10, 30, 60, 300, 3600, 86_400),
)
DISABLED = Counter(
    "limbo_webhook_endpoints_disabled_total",
    "Endpoints disabled after failing for WEBHOOK_DISABLE_AFTER",
)
JOBS = Counter(
    "limbo_webhook_jobs_total",
    "Delivery jobs handled, by result (delivered, retry_scheduled, hop, gave_up...)",
    ["result"],
)
