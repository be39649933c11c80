"""``POST /v1/mail/batch`` end to end: real API and worker processes, limbo-moto, the sink.

The API reaches moto through a counting proxy, so the AWS calls a batch costs are
counted as SQS and DynamoDB received them.
"""

from __future__ import annotations

import uuid
from typing import Any

from limbo_devtools.local_aws import LocalAws

from ..conftest import Limbo, sink_messages
from ..holding_proxy import HoldingProxy
from ..http_client import HTTP
from ..reliability.helpers import queue_depth, wait_for

SEND_BATCH = "AmazonSQS.SendMessageBatch"
RECORD_WRITE = "DynamoDB_20120810.TransactWriteItems"


def _mail(index: int, run: str) -> dict[str, Any]:
    return {
        "from": "limbo@example.com",
        "to": [f"to{index}@example.com"],
        "subject": f"batch {run} {index}",
        "message": f"body {index}",
    }


def test_a_batch_of_100_is_queued_in_at_most_10_sqs_calls_and_delivered_in_order(
    tracked_limbo: Limbo, tracked_aws: LocalAws, holding_proxy: HoldingProxy, sink: str
) -> None:
    _, api = tracked_limbo.api(AWS_ENDPOINT_URL=holding_proxy.url)
    tracked_limbo.mailgun_worker(sink)
    run = uuid.uuid4().hex[:8]
    batch = [_mail(i, run) for i in range(100)]
    key = {"Idempotency-Key": f"batch-{run}"}

    response = HTTP.post(f"{api}/v1/mail/batch", json=batch, headers=key, timeout=30)

    assert response.status_code == 200, response.text
    ids = response.json()["ids"]
    assert len(ids) == len(set(ids)) == 100
    # Calls, not attempts: on a loaded machine botocore may retry one after a read timeout.
    sqs_calls = holding_proxy.distinct(SEND_BATCH)
    store_writes = holding_proxy.distinct(RECORD_WRITE)
    assert sqs_calls <= 10, f"{sqs_calls} SendMessageBatch calls for 100 messages"
    # 100 records at 25 per BatchWriteItem.
    assert store_writes <= 5, f"{store_writes} TransactWriteItems calls for 100 records"
    print(f"batch of 100: {sqs_calls} SendMessageBatch, {store_writes} TransactWriteItems")

    def all_delivered() -> list[dict[str, Any]] | None:
        found: list[dict[str, Any]] = sink_messages(sink)
        return found if len(found) >= 100 else None

    delivered = wait_for(all_delivered, timeout=60, what="100 deliveries")
    by_subject = {m["fields"]["subject"][0]: m["fields"] for m in delivered}
    for index, message_id in enumerate(ids):
        fields = by_subject[f"batch {run} {index}"]
        assert fields["h:X-Limbo-Message-Id"] == [message_id]

    # The same batch again: the first answer, nothing queued a second time.
    replay = HTTP.post(f"{api}/v1/mail/batch", json=batch, headers=key, timeout=30)
    assert replay.status_code == 200
    assert replay.headers["Idempotent-Replayed"] == "true"
    assert replay.json()["ids"] == ids
    assert holding_proxy.distinct(SEND_BATCH) == sqs_calls
    status = HTTP.get(f"{api}/v1/mail/{ids[42]}", timeout=10).json()
    assert status["status"] == "sent"


def test_one_invalid_message_refuses_the_whole_batch_naming_it(
    tracked_limbo: Limbo, tracked_aws: LocalAws, holding_proxy: HoldingProxy
) -> None:
    _, api = tracked_limbo.api(AWS_ENDPOINT_URL=holding_proxy.url)
    batch = [_mail(i, "bad") for i in range(5)]
    batch[3]["to"] = ["not-an-address"]

    response = HTTP.post(f"{api}/v1/mail/batch", json=batch, timeout=30)

    assert response.status_code == 400
    assert response.json()["Message"] == "not submitted"
    assert response.json()["Problem"].startswith("[3].to[0]: not a valid email address")
    assert holding_proxy.seen(SEND_BATCH) == 0
    assert holding_proxy.seen(RECORD_WRITE) == 0
    assert queue_depth(tracked_aws) == 0
