"""The consumer's Prometheus metrics; labels stay low-cardinality (provider, stream,
outcome).

``provider`` is the handler's name ("ses", "mailgun", or another consumer's own). The
families are registered once per process; each consumer binds its label values, so
several consumers (or tests) can share a process.
"""

from __future__ import annotations

from prometheus_client import Counter, Gauge, Histogram

__all__ = ["WorkerMetrics"]

_LATENCY_BUCKETS = (0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1, 2.5, 5, 10, 30)
_QUEUE_BUCKETS = (0.01, 0.05, 0.1, 0.5, 1, 5, 30, 60, 300, 900, 3600, 21600)

_RECEIVED = Counter(
    "limbo_worker_messages_received_total",
    "Messages received from the queue",
    ["provider", "stream"],
)
_OUTCOMES = Counter(
    "limbo_worker_messages_total",
    "Messages handled, by outcome (sent, found_sent, duplicate, retried, deferred, "
    "dead_lettered, rejected)",
    ["provider", "stream", "outcome"],
)
_RESEND_LOOKUPS = Counter(
    "limbo_worker_resend_lookups_total",
    "Retries of an unanswered send looked up at the provider first, by result (found, "
    "not_found, failed)",
    ["provider", "result"],
)
_PROVIDER_LATENCY = Histogram(
    "limbo_worker_provider_call_duration_seconds",
    "Duration of the call to the sending provider",
    ["provider"],
    buckets=_LATENCY_BUCKETS,
)
_TIME_IN_QUEUE = Histogram(
    "limbo_worker_time_in_queue_seconds",
    "Time from the message's SentTimestamp to its receipt by the worker",
    ["provider"],
    buckets=_QUEUE_BUCKETS,
)
_IN_FLIGHT = Gauge(
    "limbo_worker_in_flight_messages",
    "Messages received and not yet settled",
    ["provider", "stream"],
)
_QUEUE_ERRORS = Counter(
    "limbo_worker_queue_errors_total",
    "Failed calls to SQS, by operation",
    ["provider", "operation"],
)
_PAUSED = Gauge(
    "limbo_worker_paused",
    "1 while the worker receives nothing because a dependency is unavailable (reason: "
    "provider_unavailable, store_unavailable)",
    ["provider", "reason"],
)


class WorkerMetrics:
    def __init__(self, provider: str, stream: str = "transactional") -> None:
        self.provider = provider
        self.stream = stream
        self.received = _RECEIVED.labels(provider, stream)
        self.provider_latency = _PROVIDER_LATENCY.labels(provider)
        self.time_in_queue = _TIME_IN_QUEUE.labels(provider)
        self.in_flight = _IN_FLIGHT.labels(provider, stream)

    def outcome(self, outcome: str) -> None:
        _OUTCOMES.labels(self.provider, self.stream, outcome).inc()

    def resend_lookup(self, result: str) -> None:
        _RESEND_LOOKUPS.labels(self.provider, result).inc()

    def queue_error(self, operation: str) -> None:
        _QUEUE_ERRORS.labels(self.provider, operation).inc()

    def paused(self, reason: str, paused: bool) -> None:
        _PAUSED.labels(self.provider, reason).set(1 if paused else 0)
