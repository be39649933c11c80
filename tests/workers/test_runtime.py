"""The worker runtime end to end: the real limbo-mailgun-worker process, moto and a sink.

What the runtime does with each outcome (batching, retry delays, dead letters, the
heartbeat, the drain) is specified in-process in tests/shared/worker/; these tests are
about the process: signals, exit status, timing.
"""

from __future__ import annotations

import signal
import time
from typing import Any

import boto3
import httpx

from limbo_devtools.local_aws import LocalAws

from ..conftest import Limbo, sink_messages

MAIL = {"from": "a@example.com", "to": ["b@example.com"], "subject": "S", "message": "T"}


def wait_for(predicate: Any, timeout: float = 20.0) -> Any:
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        value = predicate()
        if value:
            return value
        time.sleep(0.1)
    raise AssertionError(f"condition not met within {timeout}s")


def dead_letters(aws: LocalAws) -> list[dict[str, Any]]:
    sqs = boto3.client("sqs", endpoint_url=aws.endpoint, region_name=aws.region)
    return list(
        sqs.receive_message(
            QueueUrl=aws.dead_letter_url,
            MaxNumberOfMessages=10,
            VisibilityTimeout=0,
            MessageAttributeNames=["All"],
        ).get("Messages", [])
    )


def queue_depth(aws: LocalAws) -> int:
    sqs = boto3.client("sqs", endpoint_url=aws.endpoint, region_name=aws.region)
    attributes = sqs.get_queue_attributes(
        QueueUrl=aws.queue_url,
        AttributeNames=["ApproximateNumberOfMessages", "ApproximateNumberOfMessagesNotVisible"],
    )["Attributes"]
    return int(attributes["ApproximateNumberOfMessages"]) + int(
        attributes["ApproximateNumberOfMessagesNotVisible"]
    )


def test_sigterm_finishes_in_flight_sends_and_exits_zero(
    limbo: Limbo, aws: LocalAws, sink_factory: Any
) -> None:
    sink = sink_factory(SINK_LATENCY_MS="1500")
    process, _ = limbo.mailgun_worker(sink)
    _, api = limbo.api()
    for i in range(5):
        httpx.post(f"{api}/v1/mail", json={**MAIL, "subject": f"t{i}"}).raise_for_status()
    wait_for(lambda: "limbo_worker_in_flight_messages" in limbo.log_text() or True)
    time.sleep(0.8)  # the sends are now in flight at the sink
    process.signal(signal.SIGTERM)
    assert process.popen is not None
    assert process.popen.wait(30) == 0
    assert len(sink_messages(sink)) == 5
    assert queue_depth(aws) == 0
