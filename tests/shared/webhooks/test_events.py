"""The documented payload and the job that carries it."""

from __future__ import annotations

import json

from limbo_shared.webhooks import DeliveryJob, EventType, event_payload


def test_the_payload_has_type_timestamp_and_data() -> None:
    payload = event_payload(
        EventType.BOUNCED,
        "0b9f4f7e-8f3c-4d0b-a1c2-3d4e5f607182",
        occurred_at=1_800_000_000.25,
        recipient="someone@example.com",
        provider="ses",
        detail="x" * 900,
    )
    assert payload["type"] == "email.bounced"
    assert payload["timestamp"] == "2027-01-15T08:00:00.250Z"
    assert payload["data"]["message_id"] == "0b9f4f7e-8f3c-4d0b-a1c2-3d4e5f607182"
    assert payload["data"]["status"] == "bounced"
    assert payload["data"]["recipient"] == "someone@example.com"
    assert payload["data"]["provider"] == "ses"
    assert len(payload["data"]["detail"]) == 500  # bounded


def test_absent_fields_are_left_out() -> None:
    payload = event_payload(EventType.SENT, "m", occurred_at=0.0)
    assert payload["data"] == {"message_id": "m", "status": "sent"}


def test_a_job_carries_the_serialised_body_and_round_trips() -> None:
    payload = event_payload(EventType.SENT, "m", occurred_at=1.0)
    job = DeliveryJob.for_event("alice", "ep_1", EventType.SENT, payload, 1.0)
    assert json.loads(job.body) == payload
    assert job.webhook_id.startswith("msg_")
    assert job.attempt == 0 and job.due_at == 0.0
    again = DeliveryJob.model_validate_json(job.model_dump_json())
    assert again == job
