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

from limbo_devtools.local_aws import LocalAws

from ..conftest import Limbo, sink_messages
from ..http_client import HTTP
from ..reliability.helpers import metric

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


def visible(aws: LocalAws) -> int:
    sqs = boto3.client("sqs", endpoint_url=aws.endpoint, region_name=aws.region)
    attributes = sqs.get_queue_attributes(
        QueueUrl=aws.queue_url, AttributeNames=["ApproximateNumberOfMessages"]
    )["Attributes"]
    return int(attributes["ApproximateNumberOfMessages"])


def test_sigterm_finishes_in_flight_sends_and_exits_zero(
    limbo: Limbo, aws: LocalAws, sink_factory: Any
) -> None:
    sink = sink_factory(SINK_LATENCY_MS="1500")
    process, worker = limbo.mailgun_worker(sink)
    _, api = limbo.api()
    for i in range(5):
        HTTP.post(f"{api}/v1/mail", json={**MAIL, "subject": f"t{i}"}).raise_for_status()

    def all_received_and_sending() -> bool:
        # Polled, not slept: on a busy machine the worker may take a while to receive.
        return visible(aws) == 0 and metric(worker, "limbo_worker_in_flight_messages") >= 1

    wait_for(all_received_and_sending, timeout=60)
    process.signal(signal.SIGTERM)
    assert process.popen is not None
    assert process.popen.wait(30) == 0
    assert len(sink_messages(sink)) == 5
    assert queue_depth(aws) == 0


def test_an_idle_worker_stops_within_two_seconds_of_sigterm(limbo: Limbo, sink: str) -> None:
    # 20 s long polls, as deployed: the worker must not wait them out.
    process, _ = limbo.mailgun_worker(sink, WAIT_TIME_SECONDS="20")
    wait_for(lambda: '"event": "worker started"' in limbo.log_text())
    time.sleep(1.0)  # its long polls are now waiting on the empty queue
    assert process.popen is not None
    stopped = time.monotonic()
    process.signal(signal.SIGTERM)
    assert process.popen.wait(30) == 0
    took = time.monotonic() - stopped
    print(f"idle worker exited {took:.2f}s after SIGTERM")
    assert took < 2.0


def paused(worker: str) -> float:
    return metric(worker, "limbo_worker_paused", reason="provider_unavailable")


def test_a_revoked_key_pauses_the_worker_until_the_provider_answers_again(
    limbo: Limbo, aws: LocalAws, sink_factory: Any
) -> None:
    sink = sink_factory(SINK_API_KEY="key-test")
    # MAX_ATTEMPTS is the queue's maxReceiveCount (5): a pause must not use attempts up.
    _, worker = limbo.mailgun_worker(sink)
    wait_for(lambda: HTTP.get(f"{worker}/ready").status_code == 200)
    HTTP.put(f"{sink}/control/api-key", json={"api_key": "key-rotated"}).raise_for_status()
    _, api = limbo.api()
    ids = [
        HTTP.post(f"{api}/v1/mail", json={**MAIL, "subject": f"k{i}"}).json()["id"]
        for i in range(3)
    ]
    wait_for(lambda: paused(worker) == 1)
    assert HTTP.get(f"{worker}/ready").status_code == 503
    time.sleep(6)  # several probes, each refused, and no receive in between
    assert queue_depth(aws) == 3 and dead_letters(aws) == []
    assert sink_messages(sink) == []
    log = limbo.log_text()
    assert log.count('"event": "paused: receiving nothing until the dependency answers"') == 1
    assert "the API key was refused" in log and "key-test" not in log

    HTTP.put(f"{sink}/control/api-key", json={"api_key": "key-test"}).raise_for_status()
    wait_for(lambda: len(sink_messages(sink)) == 3, timeout=60)
    assert sorted(m["fields"]["h:X-Limbo-Message-Id"][0] for m in sink_messages(sink)) == sorted(
        ids
    )
    wait_for(lambda: paused(worker) == 0)
    wait_for(lambda: HTTP.get(f"{worker}/ready").status_code == 200)
    wait_for(lambda: queue_depth(aws) == 0)
    assert dead_letters(aws) == []
