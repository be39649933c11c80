"""The queues' depth as Prometheus gauges, so dashboards and alerts need no CloudWatch.

KEDA and CloudWatch see the queue, Prometheus does not: every worker asks SQS for its
queue's (and, with ``BULK_QUEUE``, the bulk stream's) and its dead-letter queue's counts
every ``QUEUE_METRICS_INTERVAL`` seconds (one GetQueueAttributes call per queue, a few
per minute per replica) and exports them. All replicas export the same numbers;
dashboards take ``max by (role, state)``. The label is the queue's role, not its name:
names are the operator's, and a test's carry random hex.
"""

from __future__ import annotations

import asyncio

from prometheus_client import Gauge

from ..logs import get_logger
from ..queue import QueueUnavailable, SqsQueue

__all__ = ["QUEUE_MESSAGES", "export_queue_depth"]

log = get_logger("limbo.worker")

QUEUE_MESSAGES = Gauge(
    "limbo_worker_queue_messages",
    "Messages in a queue as SQS approximates them, by role (queue, bulk_queue, dead_letter) "
    "and state (visible, in_flight, delayed)",
    ["role", "state"],
)
_STATES = {
    "ApproximateNumberOfMessages": "visible",
    "ApproximateNumberOfMessagesNotVisible": "in_flight",
    "ApproximateNumberOfMessagesDelayed": "delayed",
}


async def sample_queue_depth(queue: SqsQueue, role: str) -> None:
    """One sample of one queue into the gauge; on failure the last value stays."""
    try:
        attributes = await queue.attributes(
            "ApproximateNumberOfMessages",
            "ApproximateNumberOfMessagesNotVisible",
            "ApproximateNumberOfMessagesDelayed",
        )
    except QueueUnavailable as error:
        log.warning("queue depth unknown", queue=queue.name, error=str(error))
        return
    for attribute, state in _STATES.items():
        if attribute in attributes:
            QUEUE_MESSAGES.labels(role, state).set(int(attributes[attribute]))


async def export_queue_depth(queues: dict[str, SqsQueue], interval: float) -> None:
    """Sample every queue (role -> queue) every ``interval`` seconds until cancelled."""
    while True:
        await asyncio.gather(*(sample_queue_depth(q, role) for role, q in queues.items()))
        await asyncio.sleep(interval)
