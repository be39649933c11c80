"""A Mailgun that accepts after SEND_TIMEOUT: the retry finds the message in the events
API (the sink's) and sends no second email. A real worker process, a real sink.

That another worker learns of the unanswered send from the status record is shown
in-process (tests/shared/worker/test_resend.py, tests/shared/test_store.py).
"""

from __future__ import annotations

import time
import uuid
from typing import Any

import boto3

from limbo_devtools.local_aws import LocalAws
from limbo_shared.schema import MailRequest, QueuedMail

from ..conftest import Limbo, sink_messages
from ..http_client import HTTP
from .test_runtime import MAIL, queue_depth, wait_for
from .test_tracking import outcome_count


def lookups(sink: str) -> int:
    return int(HTTP.get(f"{sink}/messages", params={"count_only": 1}, timeout=5).json()["lookups"])


def test_the_retry_of_a_send_accepted_after_send_timeout_finds_it_and_does_not_resend(
    limbo: Limbo, aws: LocalAws, sink_factory: Any
) -> None:
    # Every send answers after 2 s, past SEND_TIMEOUT=1, and is accepted then; the retry
    # comes at least 3.2 s after the timeout (RETRY_BASE_SECONDS=4, -20 % jitter).
    sink = sink_factory(SINK_FAIL_SLOW="1.0", SINK_SLOW_SECONDS="2")
    mail = QueuedMail(
        id=str(uuid.uuid4()),
        owner="default",
        submitted_at=time.time(),
        mail=MailRequest.model_validate({**MAIL, "subject": "late"}),
    )
    sqs = boto3.client("sqs", endpoint_url=aws.endpoint, region_name=aws.region)
    sqs.send_message(
        QueueUrl=aws.queue_url,
        MessageBody=mail.to_json(),
        MessageGroupId="default.0",
        MessageDeduplicationId=mail.id,
    )
    _, worker = limbo.mailgun_worker(sink, SEND_TIMEOUT="1", RETRY_BASE_SECONDS="4")
    wait_for(lambda: queue_depth(aws) == 0, timeout=40)
    [accepted] = sink_messages(sink)
    assert accepted["fields"]["subject"] == ["late"]  # type: ignore[index]
    assert accepted["fields"]["v:limbo_id"] == [mail.id]  # type: ignore[index]
    # The cost: one GET, for the one retry that followed an unanswered send.
    assert lookups(sink) == 1
    assert outcome_count(worker, "found_sent") == 1
    assert outcome_count(worker, "sent") == 0
