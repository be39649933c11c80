"""The Mailgun webhook route in-process, against moto: only authentic, fresh, first-seen
webhooks reach the events queue; everything else is refused in the JSON shape."""

from __future__ import annotations

import json
import time
import uuid
from collections.abc import Iterator
from typing import Any

import boto3
import pytest
from starlette.testclient import TestClient

from limbo_devtools.local_aws import LocalAws, provision
from limbo_devtools.mailgun_webhooks import webhook

from .conftest import ApiFactory

KEY = "webhook-key-for-tests"
PATH = "/v1/events/mailgun"


@pytest.fixture
def events_aws(moto_endpoint: str) -> LocalAws:
    name = f"t{uuid.uuid4().hex[:12]}"
    return provision(
        moto_endpoint, queue_name=f"{name}.fifo", status_table=f"{name}-status", events=True
    )


@pytest.fixture
def api(events_aws: LocalAws) -> Iterator[TestClient]:
    factory = ApiFactory(events_aws)
    yield factory(
        events_queue=events_aws.events_queue_url,
        mailgun_webhook_signing_key=KEY,
        mailgun_webhook_tolerance=300,
    )
    factory.close()


def queued(aws: LocalAws) -> list[dict[str, Any]]:
    sqs = boto3.client("sqs", endpoint_url=aws.endpoint, region_name=aws.region)
    found = sqs.receive_message(
        QueueUrl=aws.events_queue_url, MaxNumberOfMessages=10, MessageAttributeNames=["All"]
    )
    return list(found.get("Messages", []))


def delivered(key: str = KEY, **overrides: Any) -> dict[str, Any]:
    return webhook(key, event="delivered", recipient="a@example.com", limbo_id="m-1", **overrides)


def test_an_authentic_webhook_is_queued_with_its_source_and_answered_at_once(
    api: TestClient, events_aws: LocalAws
) -> None:
    body = delivered()
    answer = api.post(PATH, content=json.dumps(body))  # no API key: the signature is the key
    assert (answer.status_code, answer.json()) == (200, {"Message": "queued"})
    [message] = queued(events_aws)
    assert json.loads(message["Body"]) == body
    assert message["MessageAttributes"]["limbo_event_source"]["StringValue"] == "mailgun"


def test_a_replayed_webhook_is_refused_and_not_queued_again(
    api: TestClient, events_aws: LocalAws
) -> None:
    body = json.dumps(delivered())
    assert api.post(PATH, content=body).status_code == 200
    again = api.post(PATH, content=body)
    assert again.status_code == 403
    assert again.json() == {
        "Message": "refused",
        "Problem": "this webhook was received before (replay)",
    }
    assert len(queued(events_aws)) == 1


@pytest.mark.parametrize(
    ("body", "status"),
    [
        ({"event-data": delivered()["event-data"]}, 401),  # unsigned
        (delivered(key="someone-elses-key"), 403),  # forged
        (delivered(timestamp=time.time() - 3600), 403),  # stale
        (delivered(timestamp=time.time() + 3600), 403),  # from the future
    ],
    ids=["unsigned", "forged", "stale", "future"],
)
def test_unsigned_forged_and_stale_webhooks_are_refused_and_change_nothing(
    api: TestClient, events_aws: LocalAws, body: dict[str, Any], status: int
) -> None:
    answer = api.post(PATH, content=json.dumps(body))
    assert answer.status_code == status
    assert answer.json()["Message"] == "refused" and answer.json()["Problem"]
    assert queued(events_aws) == []


def test_a_webhook_with_a_forged_signature_does_not_burn_its_token(
    api: TestClient, events_aws: LocalAws
) -> None:
    real = delivered()
    forged = json.loads(json.dumps(real))
    forged["signature"]["signature"] = "0" * 64
    assert api.post(PATH, content=json.dumps(forged)).status_code == 403
    assert api.post(PATH, content=json.dumps(real)).status_code == 200


def test_events_limbo_does_not_track_are_acknowledged_but_not_queued(
    api: TestClient, events_aws: LocalAws
) -> None:
    opened = webhook(KEY, event="opened", recipient="a@example.com", limbo_id="m-1")
    answer = api.post(PATH, content=json.dumps(opened))
    assert (answer.status_code, answer.json()) == (200, {"Message": "ignored"})
    assert queued(events_aws) == []


def test_without_a_signing_key_there_is_no_webhook_route(tracked_api: TestClient) -> None:
    assert tracked_api.post(PATH, content=json.dumps(delivered())).status_code == 404


def test_a_signing_key_without_the_events_queue_stops_the_api_naming_both(
    tracked_api_factory: ApiFactory,
) -> None:
    from limbo_shared.config import ConfigError

    with pytest.raises(ConfigError, match="MAILGUN_WEBHOOK_SIGNING_KEY is set but EVENTS_QUEUE"):
        tracked_api_factory(mailgun_webhook_signing_key=KEY)
