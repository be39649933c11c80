"""The queue-depth gauge samples the real queue (moto server) and keeps its last value
when SQS does not answer."""

from __future__ import annotations

from concurrent.futures import ThreadPoolExecutor

import boto3
from prometheus_client import REGISTRY

from limbo_devtools.local_aws import LocalAws
from limbo_shared.aws import make_client
from limbo_shared.queue import SqsQueue
from limbo_shared.worker.queue_metrics import sample_queue_depth


def _gauge(role: str, state: str) -> float | None:
    return REGISTRY.get_sample_value("limbo_worker_queue_messages", {"role": role, "state": state})


async def test_the_gauge_reports_visible_and_in_flight_messages(aws: LocalAws) -> None:
    sqs = boto3.client("sqs", region_name=aws.region, endpoint_url=aws.endpoint)
    for n in range(3):
        sqs.send_message(
            QueueUrl=aws.queue_url,
            MessageBody="{}",
            MessageGroupId="g",
            MessageDeduplicationId=str(n),
        )
    sqs.receive_message(QueueUrl=aws.queue_url, MaxNumberOfMessages=1, VisibilityTimeout=60)
    client = make_client("sqs", region=aws.region, endpoint_url=aws.endpoint)
    with ThreadPoolExecutor(2) as executor:
        queue = SqsQueue(client, aws.queue_url, executor)
        dead = SqsQueue(client, aws.dead_letter_url, executor)
        await sample_queue_depth(queue, "queue")
        await sample_queue_depth(dead, "dead_letter")
        assert _gauge("queue", "visible") == 2
        assert _gauge("queue", "in_flight") == 1
        assert _gauge("dead_letter", "visible") == 0

        unreachable = make_client(
            "sqs", region=aws.region, endpoint_url="http://127.0.0.1:9", max_attempts=1
        )
        await sample_queue_depth(SqsQueue(unreachable, aws.queue_url, executor), "queue")
        assert _gauge("queue", "visible") == 2
