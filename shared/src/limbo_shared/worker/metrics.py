from __future__ import annotations

from prometheus_client import Counter, Gauge, Histogram

__all__ = ["WorkerMetrics"]

_LATENCY_BUCKETS = (0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1, 2.5, 5, 10, 30)
_QUEUE_BUCKETS = (0.01, 0.05, 0.1, 0.5, 1, 5, 30, 60, 300, 900, 3600, 21600)


class WorkerMetrics:
    """The worker's Prometheus metrics; labels stay low-cardinality (provider, outcome)."""

    def __init__(self, provider: str) -> None:
        self.provider = provider
        self.received = Counter(
            "limbo_worker_messages_received_total", "Messages received from the queue", ["provider"]
        ).labels(provider)
        self._outcomes = Counter(
            "limbo_worker_messages_total",
            "Messages handled, by outcome (sent, retried, dead_lettered, rejected)",
            ["provider", "outcome"],
        )
        self.provider_latency = Histogram(
            "limbo_worker_provider_call_duration_seconds",
            "Duration of the call to the sending provider",
            ["provider"],
            buckets=_LATENCY_BUCKETS,
        ).labels(provider)
        self.time_in_queue = Histogram(
            "limbo_worker_time_in_queue_seconds",
            "Time from the message's SentTimestamp to its receipt by the worker",
            ["provider"],
            buckets=_QUEUE_BUCKETS,
        ).labels(provider)
        self.in_flight = Gauge(
            "limbo_worker_in_flight_messages", "Messages received and not yet settled", ["provider"]
        ).labels(provider)
        self._queue_errors = Counter(
            "limbo_worker_queue_errors_total",
            "Failed calls to SQS, by operation",
            ["provider", "operation"],
        )

    def outcome(self, outcome: str) -> None:
        self._outcomes.labels(self.provider, outcome).inc()

    def queue_error(self, operation: str) -> None:
        self._queue_errors.labels(self.provider, operation).inc()
