"""Poison on the queue: whatever arrives, it goes to the dead-letter queue with a reason
and the worker goes on sending the next mail.

Messages are put straight into moto (as a bug, an old version or an attacker with
queue access would), beside valid mail, and a real limbo-mailgun-worker drains them.
"""

from __future__ import annotations

import json
import time
import uuid
from typing import Any

import pytest

from limbo_devtools.local_aws import LocalAws
from limbo_shared.schema import MailRequest, QueuedMail

from ..conftest import Limbo
from ..http_client import HTTP
from ..reliability.helpers import (
    MAIL,
    dead_letters,
    deliveries,
    metric,
    put_envelope,
    queue_depth,
    sqs,
    wait_for,
)

pytestmark = pytest.mark.slow

SQS_LIMIT = 1_048_576


def envelope_json(**mail: Any) -> str:
    message_id = str(uuid.uuid4())
    request = MailRequest.model_validate({**MAIL, **mail})
    return QueuedMail(
        id=message_id, owner="default", submitted_at=time.time(), mail=request
    ).to_json()


def injected_envelope() -> str:
    """A valid-looking envelope whose subject would inject a Bcc header."""
    data = json.loads(envelope_json())
    data["mail"]["subject"] = "hello\r\nBcc: victim@example.com"
    return json.dumps(data)


def garbage_attributes() -> dict[str, dict[str, Any]]:
    attributes: dict[str, dict[str, Any]] = {
        "traceparent": {"DataType": "String", "StringValue": "00-not-a-trace-id-zz"},
        "tracestate": {"DataType": "String", "StringValue": "=,=,=" * 50},
        "blob": {"DataType": "Binary", "BinaryValue": bytes(range(256))},
        "count": {"DataType": "Number", "StringValue": "-1e308"},
    }
    for i in range(6):  # ten in all, SQS's maximum
        attributes[f"x-extra-{i}"] = {"DataType": "String.custom", "StringValue": "☃" * 40}
    return attributes


POISON: dict[str, tuple[str, dict[str, dict[str, Any]]]] = {
    "not json": ("\x01 not json at all \ufffd", {}),
    "json but not an object": ("[1, 2, 3]", {}),
    "wrong schema": (json.dumps({"id": "x", "mail": {"to": "nobody"}}), {}),
    "unknown envelope field": (json.dumps({**json.loads(envelope_json()), "extra": 1}), {}),
    "header injection": (injected_envelope(), {}),
    # Just under the limit: the reason and source id push the dead letter over it.
    "oversize": ("{" + "x" * (SQS_LIMIT - 21), {}),
    "ten odd attributes": ("also not json", garbage_attributes()),
    "valid body, ten odd attributes": (
        envelope_json(subject="odd attributes"),
        garbage_attributes(),
    ),
}


def put_raw(aws: LocalAws, body: str, attributes: dict[str, dict[str, Any]]) -> str:
    kwargs: dict[str, Any] = {}
    if attributes:
        kwargs["MessageAttributes"] = attributes
    return str(
        sqs(aws).send_message(
            QueueUrl=aws.queue_url,
            MessageBody=body,
            MessageGroupId=f"p{uuid.uuid4().hex[:6]}",
            MessageDeduplicationId=uuid.uuid4().hex,
            **kwargs,
        )["MessageId"]
    )


def dead_letter_size(letter: dict[str, Any]) -> int:
    """Bytes SQS counts for a message: body plus each attribute's name, type and value."""
    total = len(letter["Body"].encode())
    for name, attribute in letter.get("MessageAttributes", {}).items():
        value = attribute.get("StringValue")
        total += len(name.encode()) + len(attribute["DataType"].encode())
        total += len(value.encode()) if value is not None else len(attribute["BinaryValue"])
    return total


def test_poison_goes_to_the_dead_letter_queue_with_a_reason_and_the_worker_goes_on(
    limbo: Limbo, aws: LocalAws, sink: str
) -> None:
    _, worker = limbo.mailgun_worker(sink)
    ids = {name: put_raw(aws, body, attributes) for name, (body, attributes) in POISON.items()}
    good = {put_envelope(aws, f"good {i}") for i in range(5)}

    # Everything valid is sent; the worker never stopped.
    wait_for(lambda: set(deliveries(sink)) >= good, timeout=60, what="the good mail")
    wait_for(lambda: queue_depth(aws) == 0, timeout=60, what="an empty queue")
    assert HTTP.get(f"{worker}/health").status_code == 200
    letters = {
        letter["MessageAttributes"]["limbo-source-message-id"]["StringValue"]: letter
        for letter in dead_letters(aws)
    }

    expected_dead = {name for name in POISON if not name.startswith("valid body")}
    assert {name for name, sqs_id in ids.items() if sqs_id in letters} == expected_dead
    for name in expected_dead:
        letter = letters[ids[name]]
        reason = letter["MessageAttributes"]["limbo-reason"]["StringValue"]
        assert reason.startswith("unparseable message"), (name, reason)
        # Within SQS's limits, which the dead letter must respect to be sent at all.
        assert len(letter["MessageAttributes"]) <= 10, name
        assert dead_letter_size(letter) <= SQS_LIMIT, name
    # The trace context travels with a dead letter; a cut body says so.
    odd = letters[ids["ten odd attributes"]]["MessageAttributes"]
    assert "traceparent" in odd
    assert "limbo-truncated" in letters[ids["oversize"]]["MessageAttributes"]
    # The injected subject never reached the provider; odd attributes did not stop a send.
    subjects = [m["fields"]["subject"][0] for m in HTTP.get(f"{sink}/messages").json()["messages"]]
    assert not any("Bcc" in subject for subject in subjects)
    assert "odd attributes" in subjects
    assert metric(worker, "limbo_worker_messages_total", outcome="dead_lettered") == len(
        expected_dead
    )
