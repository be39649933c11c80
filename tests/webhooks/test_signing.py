"""The Standard Webhooks headers, verified by the reference library."""

from __future__ import annotations

import time

import pytest
from standardwebhooks.webhooks import Webhook, WebhookVerificationError

from limbo_shared.webhooks import DeliveryJob, Endpoint, EventType, event_payload
from limbo_shared.webhooks.registry import new_secret
from limbo_webhooks.signing import signed_headers


def _endpoint(**changes: object) -> Endpoint:
    values: dict[str, object] = {
        "id": "ep_1",
        "url": "https://hooks.example.com",
        "events": (EventType.SENT,),
        "secret": new_secret(),
        "created_at": 0.0,
        **changes,
    }
    return Endpoint(**values)  # type: ignore[arg-type]


def _job() -> DeliveryJob:
    payload = event_payload(EventType.SENT, "m-1", occurred_at=time.time(), provider="ses")
    return DeliveryJob.for_event("alice", "ep_1", EventType.SENT, payload, time.time())


def test_the_reference_library_verifies_the_signature() -> None:
    endpoint, job = _endpoint(), _job()
    headers = signed_headers(endpoint, job, time.time())
    verified = Webhook(endpoint.secret).verify(job.body, headers)
    assert verified["type"] == "email.sent"
    assert verified["data"] == {"message_id": "m-1", "status": "sent", "provider": "ses"}
    assert headers["webhook-id"] == job.webhook_id
    assert headers["content-type"] == "application/json"


def test_a_changed_body_or_another_secret_fails_verification() -> None:
    endpoint, job = _endpoint(), _job()
    headers = signed_headers(endpoint, job, time.time())
    with pytest.raises(WebhookVerificationError):
        Webhook(endpoint.secret).verify(job.body.replace("m-1", "m-2"), headers)
    with pytest.raises(WebhookVerificationError):
        Webhook(new_secret()).verify(job.body, headers)


def test_a_retry_is_signed_with_its_own_timestamp() -> None:
    endpoint, job = _endpoint(), _job()
    old = signed_headers(endpoint, job, time.time() - 3600)
    with pytest.raises(WebhookVerificationError, match="too old"):
        Webhook(endpoint.secret).verify(job.body, old)
    fresh = signed_headers(endpoint, job, time.time())
    assert fresh["webhook-id"] == old["webhook-id"]
    Webhook(endpoint.secret).verify(job.body, fresh)


def test_during_a_rotation_both_secrets_verify_then_only_the_new_one() -> None:
    old_secret = new_secret()
    now = time.time()
    rotating = _endpoint(previous_secret=old_secret, previous_until=now + 60)
    job = _job()
    headers = signed_headers(rotating, job, now)
    assert len(headers["webhook-signature"].split(" ")) == 2
    Webhook(old_secret).verify(job.body, headers)
    Webhook(rotating.secret).verify(job.body, headers)
    after = signed_headers(
        _endpoint(secret=rotating.secret, previous_secret=old_secret, previous_until=now - 1),
        job,
        now,
    )
    with pytest.raises(WebhookVerificationError):
        Webhook(old_secret).verify(job.body, after)
