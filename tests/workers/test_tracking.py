"""Status records written by a real worker process: queued → sending → sent, or why not."""

from __future__ import annotations

import json
import time
from typing import Any

import boto3

from limbo_devtools.local_aws import LocalAws
from limbo_shared.schema import MailRequest, QueuedMail

from ..conftest import Limbo, sink_messages
from ..http_client import HTTP
from .test_runtime import MAIL, dead_letters, queue_depth, wait_for


def status(api: str, message_id: str) -> dict[str, Any]:
    response = HTTP.get(f"{api}/v1/mail/{message_id}", timeout=5)
    response.raise_for_status()
    return dict(response.json())


def status_becomes(api: str, message_id: str, wanted: str, timeout: float = 20) -> dict[str, Any]:
    return dict(
        wait_for(lambda: (r := status(api, message_id))["status"] == wanted and r, timeout=timeout)
    )


def outcome_count(worker: str, outcome: str) -> float:
    values = HTTP.get(f"{worker}/metrics", headers={"Accept": "application/json"}).json()["values"]
    return float(
        values.get(
            f"limbo_worker_messages_total{{outcome={outcome},provider=mailgun,stream=transactional}}",
            0.0,
        )
    )


def submit(api: str, subject: str = "S") -> str:
    response = HTTP.post(f"{api}/v1/mail", json={**MAIL, "subject": subject}, timeout=10)
    response.raise_for_status()
    return str(response.json()["id"])


def test_a_sent_message_records_the_provider_and_its_id(tracked_limbo: Limbo, sink: str) -> None:
    _, api = tracked_limbo.api()
    message_id = submit(api)
    assert status(api, message_id)["status"] == "queued"
    tracked_limbo.mailgun_worker(sink)
    record = status_becomes(api, message_id, "sent")
    [delivered] = sink_messages(sink)
    assert record["provider"] == "mailgun"
    assert record["provider_message_id"] == delivered["id"]
    assert record["attempts"] == 1 and record["last_error"] is None
    assert record["sent_at"] is not None and record["sent_at"] >= record["created_at"]


def test_a_transient_failure_is_retrying_with_its_error_then_sent(
    tracked_limbo: Limbo, sink_factory: Any
) -> None:
    failing, working = sink_factory(SINK_FAIL_500="1.0"), sink_factory()
    _, api = tracked_limbo.api()
    message_id = submit(api)
    first, _ = tracked_limbo.mailgun_worker(failing, RETRY_BASE_SECONDS="1")
    record = status_becomes(api, message_id, "retrying")
    assert "500" in record["last_error"] and record["attempts"] >= 1
    first.stop()
    tracked_limbo.mailgun_worker(working)
    # The stopped worker's abandoned long poll lives on in the emulator until its wait
    # runs out, and can take the retry as it becomes visible: the retry then waits out
    # the queue's 30 s visibility timeout (README, Shutdown). Seen once in a full run.
    record = status_becomes(api, message_id, "sent", timeout=50)
    assert record["attempts"] >= 2
    assert "500" in record["last_error"]  # the last failure stays visible
    assert len(sink_messages(working)) == 1


def test_a_permanent_rejection_is_recorded_as_rejected(
    tracked_limbo: Limbo, tracked_aws: LocalAws, sink_factory: Any
) -> None:
    _, api = tracked_limbo.api()
    message_id = submit(api)
    tracked_limbo.mailgun_worker(sink_factory(SINK_FAIL_400="1.0"))
    record = status_becomes(api, message_id, "rejected")
    assert record["last_error"].startswith("mailgun answered 400")
    assert record["attempts"] == 1
    wait_for(lambda: dead_letters(tracked_aws))


def test_giving_up_after_the_last_attempt_is_recorded_as_failed(
    tracked_limbo: Limbo, tracked_aws: LocalAws, sink_factory: Any
) -> None:
    # Two attempts before the dead-letter queue (the worker reads the redrive policy).
    sqs = boto3.client("sqs", endpoint_url=tracked_aws.endpoint, region_name=tracked_aws.region)
    attributes = sqs.get_queue_attributes(
        QueueUrl=tracked_aws.queue_url, AttributeNames=["RedrivePolicy"]
    )["Attributes"]
    policy = json.loads(attributes["RedrivePolicy"])
    sqs.set_queue_attributes(
        QueueUrl=tracked_aws.queue_url,
        Attributes={"RedrivePolicy": json.dumps({**policy, "maxReceiveCount": 2})},
    )
    _, api = tracked_limbo.api()
    message_id = submit(api)
    # Backoff rounds down to 0 s: the second attempt follows at once.
    tracked_limbo.mailgun_worker(sink_factory(SINK_FAIL_500="1.0"), RETRY_BASE_SECONDS="0.1")
    record = status_becomes(api, message_id, "failed", timeout=30)
    assert record["attempts"] == 2 and "500" in record["last_error"]
    wait_for(lambda: dead_letters(tracked_aws))


def test_a_copy_of_a_sent_message_is_deleted_without_sending(
    tracked_limbo: Limbo, tracked_aws: LocalAws, sink: str
) -> None:
    _, api = tracked_limbo.api()
    _, worker = tracked_limbo.mailgun_worker(sink)
    message_id = submit(api)
    status_becomes(api, message_id, "sent")
    # The same envelope again, as SQS redelivers it (deduplication only lasts 5 minutes).
    sqs = boto3.client("sqs", endpoint_url=tracked_aws.endpoint, region_name=tracked_aws.region)
    envelope = QueuedMail(
        id=message_id,
        owner="default",
        submitted_at=time.time(),
        mail=MailRequest.model_validate({**MAIL, "subject": "S"}),
    )
    sqs.send_message(
        QueueUrl=tracked_aws.queue_url,
        MessageBody=envelope.to_json(),
        MessageGroupId="default.0",
        MessageDeduplicationId=f"{message_id}-again",
    )
    wait_for(lambda: outcome_count(worker, "duplicate") == 1)
    wait_for(lambda: queue_depth(tracked_aws) == 0)
    assert len(sink_messages(sink)) == 1
    assert status(api, message_id)["attempts"] == 1
