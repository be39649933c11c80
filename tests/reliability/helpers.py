"""Small probes shared by the reliability tests: queue depth, deliveries, CPU, metrics."""

from __future__ import annotations

import os
import time
import uuid
from collections import Counter
from collections.abc import Callable
from typing import Any, TypeVar

from limbo_devtools.local_aws import LocalAws
from limbo_shared.aws import new_session
from limbo_shared.schema import MailRequest, QueuedMail

from ..http_client import HTTP

T = TypeVar("T")

MAIL: dict[str, Any] = {
    "from": "a@example.com",
    "to": ["b@example.com"],
    "subject": "S",
    "message": "T",
}


def wait_for(
    predicate: Callable[[], T | None], timeout: float = 30.0, what: str = "condition"
) -> T:
    deadline = time.monotonic() + timeout
    while True:
        value = predicate()
        if value:
            return value
        if time.monotonic() > deadline:
            raise AssertionError(f"{what} not met within {timeout}s (last: {value!r})")
        time.sleep(0.2)


def sqs(aws: LocalAws) -> Any:
    """A client straight to the emulator, never through a test's proxy."""
    return new_session().client("sqs", endpoint_url=aws.endpoint, region_name=aws.region)


def queue_depth(aws: LocalAws) -> int:
    attributes = sqs(aws).get_queue_attributes(
        QueueUrl=aws.queue_url,
        AttributeNames=["ApproximateNumberOfMessages", "ApproximateNumberOfMessagesNotVisible"],
    )["Attributes"]
    return sum(int(value) for value in attributes.values())


def put_envelope(aws: LocalAws, subject: str = "direct") -> str:
    """A valid message put on the queue as the API would, bypassing it; answers its id."""
    message_id = str(uuid.uuid4())
    envelope = QueuedMail(
        id=message_id,
        owner="default",
        submitted_at=time.time(),
        mail=MailRequest.model_validate({**MAIL, "subject": subject}),
    )
    sqs(aws).send_message(
        QueueUrl=aws.queue_url,
        MessageBody=envelope.to_json(),
        MessageGroupId=f"default.{message_id[:4]}",
        MessageDeduplicationId=message_id,
    )
    return message_id


def deliveries(sink: str) -> Counter[str]:
    """How many times the sink received each limbo message id."""
    messages = HTTP.get(f"{sink}/messages", timeout=10).json()["messages"]
    return Counter(m["fields"]["h:X-Limbo-Message-Id"][0] for m in messages)


def dead_letters(aws: LocalAws) -> list[dict[str, Any]]:
    """Everything in the dead-letter queue (consumed)."""
    client = sqs(aws)
    letters: list[dict[str, Any]] = []
    for _ in range(100):
        batch = client.receive_message(
            QueueUrl=aws.dead_letter_url,
            MaxNumberOfMessages=10,
            VisibilityTimeout=60,
            MessageAttributeNames=["All"],
            WaitTimeSeconds=0,
        ).get("Messages", [])
        if not batch:
            break
        letters += batch
        for message in batch:
            client.delete_message(
                QueueUrl=aws.dead_letter_url, ReceiptHandle=message["ReceiptHandle"]
            )
    return letters


def cpu_seconds(pid: int) -> float:
    """User + system CPU time a process has used so far (Linux /proc)."""
    with open(f"/proc/{pid}/stat") as stat:
        fields = stat.read().rpartition(")")[2].split()
    return (int(fields[11]) + int(fields[12])) / os.sysconf("SC_CLK_TCK")


def metric(url: str, name: str, **labels: str) -> float:
    """Sum of a Prometheus sample over the series matching ``labels``."""
    total = 0.0
    for line in HTTP.get(f"{url}/metrics", timeout=5).text.splitlines():
        if not line.startswith(name + "{") and not line.startswith(name + " "):
            continue
        if all(f'{key}="{value}"' in line for key, value in labels.items()):
            total += float(line.rsplit(" ", 1)[1])
    return total
