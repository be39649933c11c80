"""GET /v1/mail/{id}: a client's own messages, by id; nobody else's."""

from __future__ import annotations

import time
import uuid
from datetime import datetime

import boto3
from starlette.testclient import TestClient

from limbo_devtools.local_aws import LocalAws

from .conftest import ALICE_KEY, BOB_KEY, VALID, ApiFactory, bearer

DAY = 86_400


def test_a_message_is_queued_as_soon_as_the_post_answers(tracked_api: TestClient) -> None:
    before = time.time()
    message_id = tracked_api.post(
        "/v1/mail", json={**VALID, "cc": ["c@example.com"]}, headers=bearer(ALICE_KEY)
    ).json()["id"]
    record = tracked_api.get(f"/v1/mail/{message_id}", headers=bearer(ALICE_KEY))
    assert record.status_code == 200
    body = record.json()
    assert body == {
        "id": message_id,
        "owner": "alice",
        "status": "queued",
        "stream": "transactional",
        "provider": None,
        "provider_message_id": None,
        "attempts": 0,
        "last_error": None,
        "recipients": 2,
        "created_at": body["created_at"],
        "updated_at": body["created_at"],
        "sent_at": None,
        "expires_at": body["expires_at"],
        "suppressed": [],
        "delivery": [],
    }
    assert abs(datetime.fromisoformat(body["created_at"]).timestamp() - before) < 5
    documented = tracked_api.get("/openapi.json").json()["components"]["schemas"]["MessageStatus"]
    assert set(body) == set(documented["properties"]) == set(documented["required"])


def test_records_expire_after_status_ttl_days(
    tracked_api_factory: ApiFactory, tracked_aws: LocalAws
) -> None:
    api = tracked_api_factory(status_ttl_days=7)
    message_id = api.post("/v1/mail", json=VALID, headers=bearer(ALICE_KEY)).json()["id"]
    client = boto3.client(
        "dynamodb", endpoint_url=tracked_aws.endpoint, region_name=tracked_aws.region
    )
    item = client.get_item(
        TableName=tracked_aws.status_table, Key={"pk": {"S": f"mail#{message_id}"}}
    )["Item"]
    assert int(item["expires_at"]["N"]) == int(float(item["created_at"]["N"])) + 7 * DAY


def test_unknown_ids_and_other_keys_messages_are_the_same_404(tracked_api: TestClient) -> None:
    message_id = tracked_api.post("/v1/mail", json=VALID, headers=bearer(ALICE_KEY)).json()["id"]
    unknown = str(uuid.uuid4())
    answers = [
        tracked_api.get(f"/v1/mail/{message_id}", headers=bearer(BOB_KEY)),
        tracked_api.get(f"/v1/mail/{unknown}", headers=bearer(ALICE_KEY)),
        tracked_api.get("/v1/mail/not-a-uuid", headers=bearer(ALICE_KEY)),
    ]
    assert [a.status_code for a in answers] == [404, 404, 404]
    assert answers[0].json() == {
        "Message": "not found",
        "Problem": f"no message {message_id!r} for this API key",
    }
    assert answers[1].json()["Problem"] == f"no message {unknown!r} for this API key"


def test_without_tracking_lookups_say_so(tracked_api_factory: ApiFactory) -> None:
    api = tracked_api_factory(status_table=None)
    message_id = api.post("/v1/mail", json=VALID, headers=bearer(ALICE_KEY)).json()["id"]
    response = api.get(f"/v1/mail/{message_id}", headers=bearer(ALICE_KEY))
    assert response.status_code == 501
    assert "STATUS_TABLE" in response.json()["Problem"]


def test_openapi_describes_keys_idempotency_and_lookups(tracked_api: TestClient) -> None:
    document = tracked_api.get("/openapi.json").json()
    assert document["components"]["securitySchemes"]["apiKey"]["scheme"] == "bearer"
    post = document["paths"]["/v1/mail"]["post"]
    assert {"401", "409", "429"} <= set(post["responses"])
    assert any(p["name"] == "Idempotency-Key" and p["in"] == "header" for p in post["parameters"])
    lookup = document["paths"]["/v1/mail/{id}"]["get"]
    assert {"200", "401", "404", "429"} <= set(lookup["responses"])
    statuses = document["components"]["schemas"]["MessageStatus"]["properties"]["status"]["enum"]
    assert statuses == [
        "scheduled",
        "canceled",
        "queued",
        "sending",
        "sent",
        "retrying",
        "failed",
        "rejected",
        # Once the provider reports back (delivery events).
        "delayed",
        "delivered",
        "bounced",
        "unsubscribed",
        "complained",
    ]
    assert document["paths"]["/health"]["get"]["security"] == []
