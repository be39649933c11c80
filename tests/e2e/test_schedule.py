"""Scheduled send end to end: API, limbo-scheduler and a worker as real processes."""

from __future__ import annotations

import time
import uuid
from datetime import UTC, datetime
from typing import Any

from limbo_devtools.local_aws import LocalAws

from ..conftest import Limbo, sink_messages
from ..http_client import HTTP
from ..reliability.helpers import sqs, wait_for


def _at(epoch: float) -> str:
    return datetime.fromtimestamp(epoch, UTC).isoformat(timespec="milliseconds")


def _mail(subject: str, **extra: Any) -> dict[str, Any]:
    return {
        "from": "limbo@example.com",
        "to": ["to@example.com"],
        "subject": subject,
        "message": "later",
        **extra,
    }


def _status(api: str, message_id: str) -> str:
    return str(HTTP.get(f"{api}/v1/mail/{message_id}", timeout=10).json()["status"])


def _schedule_depth(aws: LocalAws) -> int:
    attributes = sqs(aws).get_queue_attributes(
        QueueUrl=aws.schedule_queue_url,
        AttributeNames=[
            "ApproximateNumberOfMessages",
            "ApproximateNumberOfMessagesNotVisible",
            "ApproximateNumberOfMessagesDelayed",
        ],
    )["Attributes"]
    return sum(int(value) for value in attributes.values())


def test_a_scheduled_message_is_scheduled_until_due_then_sent_within_seconds(
    tracked_limbo: Limbo, sink: str
) -> None:
    _, api = tracked_limbo.api()
    tracked_limbo.scheduler()
    tracked_limbo.mailgun_worker(sink)
    subject = f"scheduled {uuid.uuid4().hex[:8]}"
    due = time.time() + 5

    response = HTTP.post(f"{api}/v1/mail", json=_mail(subject, scheduled_at=_at(due)))

    assert response.status_code == 200, response.text
    message_id = response.json()["id"]
    assert _status(api, message_id) == "scheduled"
    delivered = wait_for(
        lambda: [m for m in sink_messages(sink) if m["fields"]["subject"] == [subject]],  # type: ignore[index]
        timeout=60,
        what="the scheduled delivery",
    )
    lateness = float(delivered[0]["received_at"]) - due  # type: ignore[arg-type]
    print(f"scheduled send lateness: {lateness:.2f} s")
    assert lateness >= 0, "sent before it was due"
    assert lateness < 5, f"sent {lateness:.1f} s after it was due"
    wait_for(lambda: _status(api, message_id) == "sent", what="status sent")


def test_cancel_stops_a_scheduled_message_and_refuses_a_sent_one(
    tracked_limbo: Limbo, tracked_aws: LocalAws, sink: str
) -> None:
    _, api = tracked_limbo.api()
    tracked_limbo.scheduler()
    tracked_limbo.mailgun_worker(sink)
    subject = f"canceled {uuid.uuid4().hex[:8]}"
    due = time.time() + 4
    message_id = HTTP.post(f"{api}/v1/mail", json=_mail(subject, scheduled_at=_at(due))).json()[
        "id"
    ]

    canceled = HTTP.delete(f"{api}/v1/mail/{message_id}")

    assert canceled.status_code == 200
    assert canceled.json() == {"Message": "canceled", "id": message_id}
    assert _status(api, message_id) == "canceled"
    # Past its due time the scheduler drops it: nothing is left waiting, nothing sent.
    wait_for(
        lambda: time.time() > due + 1 and _schedule_depth(tracked_aws) == 0,
        timeout=60,
        what="the canceled message dropped",
    )
    now = HTTP.post(f"{api}/v1/mail", json=_mail(subject + " now")).json()["id"]
    wait_for(lambda: _status(api, now) == "sent", timeout=60, what="the unscheduled one sent")
    assert [m["fields"]["subject"] for m in sink_messages(sink)] == [[subject + " now"]]  # type: ignore[index]
    assert _status(api, message_id) == "canceled"

    too_late = HTTP.delete(f"{api}/v1/mail/{now}")
    assert too_late.status_code == 409
    assert "is sent" in too_late.json()["Problem"]
    assert HTTP.delete(f"{api}/v1/mail/{uuid.uuid4()}").status_code == 404
