"""The worker runtime, run as the real limbo-mailgun-worker process against moto and a sink."""

from __future__ import annotations

import json
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


def put_raw(aws: LocalAws, body: str, dedup: str) -> None:
    sqs = boto3.client("sqs", endpoint_url=aws.endpoint, region_name=aws.region)
    sqs.send_message(
        QueueUrl=aws.queue_url, MessageBody=body, MessageGroupId="g", MessageDeduplicationId=dedup
    )


def test_poison_messages_go_to_the_dead_letter_queue_and_the_worker_goes_on(
    limbo: Limbo, aws: LocalAws, sink: str
) -> None:
    _, worker = limbo.mailgun_worker(sink)
    put_raw(aws, "not json at all", "p1")
    put_raw(aws, json.dumps({"id": "x", "mail": {}}), "p2")
    _, api = limbo.api()
    httpx.post(f"{api}/v1/mail", json=MAIL).raise_for_status()
    wait_for(lambda: len(sink_messages(sink)) == 1)
    letters = wait_for(lambda: dead_letters(aws) if len(dead_letters(aws)) >= 2 else None)
    reasons = sorted(m["MessageAttributes"]["limbo-reason"]["StringValue"] for m in letters)
    assert all(reason.startswith("unparseable message") for reason in reasons)
    assert httpx.get(f"{worker}/health").json() == {"health": "ok"}


def test_permanent_rejection_is_dead_lettered_at_once_with_its_reason(
    limbo: Limbo, aws: LocalAws, sink_factory: Any
) -> None:
    sink = sink_factory(SINK_FAIL_400="1.0")
    limbo.mailgun_worker(sink)
    _, api = limbo.api()
    message_id = httpx.post(f"{api}/v1/mail", json=MAIL).json()["id"]
    [letter] = wait_for(lambda: dead_letters(aws))
    reason = letter["MessageAttributes"]["limbo-reason"]["StringValue"]
    assert reason.startswith("rejected by mailgun: mailgun answered 400")
    assert json.loads(letter["Body"])["id"] == message_id
    # The delete follows the dead letter by a batch flush: wait for it, do not race it.
    wait_for(lambda: queue_depth(aws) == 0)


def test_transient_failure_is_retried_with_backoff(
    limbo: Limbo, aws: LocalAws, sink_factory: Any
) -> None:
    # Every other answer is a 500: the first attempt fails, a later one succeeds.
    sink = sink_factory(SINK_FAIL_500="0.5", SINK_SEED="3")
    _, worker = limbo.mailgun_worker(sink, RETRY_BASE_SECONDS="1")
    _, api = limbo.api()
    for i in range(4):
        httpx.post(f"{api}/v1/mail", json={**MAIL, "subject": f"r{i}"}).raise_for_status()
    wait_for(lambda: len(sink_messages(sink)) == 4, timeout=40)
    subjects = sorted(m["fields"]["subject"][0] for m in sink_messages(sink))
    assert subjects == ["r0", "r1", "r2", "r3"]
    metrics = httpx.get(f"{worker}/metrics").text
    assert 'limbo_worker_messages_total{outcome="retried",provider="mailgun"}' in metrics


def test_slow_send_longer_than_visibility_is_not_delivered_twice(
    limbo: Limbo, aws: LocalAws, sink_factory: Any
) -> None:
    sink = sink_factory(SINK_LATENCY_MS="7000")
    sqs = boto3.client("sqs", endpoint_url=aws.endpoint, region_name=aws.region)
    sqs.set_queue_attributes(QueueUrl=aws.queue_url, Attributes={"VisibilityTimeout": "5"})
    limbo.mailgun_worker(sink, VISIBILITY_TIMEOUT="5", SEND_TIMEOUT="20")
    limbo.mailgun_worker(sink, VISIBILITY_TIMEOUT="5", SEND_TIMEOUT="20")
    _, api = limbo.api()
    httpx.post(f"{api}/v1/mail", json=MAIL).raise_for_status()
    wait_for(lambda: sink_messages(sink), timeout=30)
    time.sleep(3)
    assert len(sink_messages(sink)) == 1


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
