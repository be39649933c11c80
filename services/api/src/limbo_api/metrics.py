from __future__ import annotations

from prometheus_client import Counter, Histogram

__all__ = ["ApiMetrics"]


class ApiMetrics:
    """The API's Prometheus metrics. Route labels are templates, never raw paths."""

    def __init__(self) -> None:
        self.requests = Counter(
            "limbo_api_requests_total",
            "HTTP requests, by route and status",
            ["method", "route", "status"],
        )
        self.latency = Histogram(
            "limbo_api_request_duration_seconds",
            "HTTP request latency",
            ["method", "route"],
            buckets=(0.001, 0.0025, 0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1, 2.5, 10),
        )
        self.published = Counter("limbo_api_messages_published_total", "Messages put on the queue")
        self.batch_size = Histogram(
            "limbo_api_publish_batch_size",
            "Messages per SendMessageBatch call",
            buckets=(1, 2, 3, 4, 5, 6, 7, 8, 9, 10),
        )
        self.publish_failures = Counter(
            "limbo_api_publish_failures_total",
            "Messages that could not be queued, by reason",
            ["reason"],
        )


# Module level, like the store's: registered once per process however many apps it builds.
WEBHOOKS = Counter(
    "limbo_api_webhooks_total",
    "Delivery-event webhooks received, by source and result (queued, ignored, refused...)",
    ["source", "result"],
)
SUPPRESSED_SENDS = Counter(
    "limbo_api_suppressed_recipients_total",
    "Recipients left out of a send because they are on the suppression list",
)
