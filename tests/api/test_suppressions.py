"""The suppression list's routes and the check before a send, in-process against moto."""

from __future__ import annotations

import base64
import json
import time
from typing import Any

import boto3
import jsonschema
from prometheus_client import REGISTRY
from starlette.testclient import TestClient

from limbo_devtools.local_aws import LocalAws
from limbo_shared.store import MAX_CURSOR
from limbo_shared.webhooks import DeliveryJob

from .conftest import ALICE_KEY, BOB_KEY, VALID, ApiFactory, bearer

ALICE = bearer(ALICE_KEY)
BOB = bearer(BOB_KEY)


def add(api: TestClient, address: str, reason: str = "asked us to stop", **headers: Any) -> Any:
    return api.post(
        "/v1/suppressions", json={"address": address, "reason": reason}, headers=headers or ALICE
    )


def test_a_manual_entry_can_be_read_listed_and_removed(tracked_api: TestClient) -> None:
    created = add(tracked_api, "Someone <Someone@Example.com>")
    assert created.status_code == 201
    entry = created.json()
    assert (entry["address"], entry["reason"], entry["source"], entry["detail"]) == (
        "someone@example.com",
        "manual",
        "api",
        "asked us to stop",
    )
    assert tracked_api.get("/v1/suppressions/SOMEONE@example.com", headers=ALICE).json() == entry
    listed = tracked_api.get("/v1/suppressions", headers=ALICE).json()
    assert listed == {"suppressions": [entry], "cursor": None}
    removed = tracked_api.delete("/v1/suppressions/someone@example.com", headers=ALICE)
    assert removed.json() == {"Message": "removed", "address": "someone@example.com"}
    gone = tracked_api.get("/v1/suppressions/someone@example.com", headers=ALICE)
    assert gone.status_code == 404 and gone.json()["Message"] == "not found"
    assert (
        tracked_api.delete("/v1/suppressions/someone@example.com", headers=ALICE).status_code == 404
    )


def test_the_list_is_paginated_in_address_order(tracked_api: TestClient) -> None:
    addresses = [f"user{i}@example.com" for i in range(5)]
    for address in reversed(addresses):
        assert add(tracked_api, address).status_code == 201
    seen: list[str] = []
    cursor: str | None = None
    pages = 0
    while True:
        params = {"limit": "2", **({"cursor": cursor} if cursor else {})}
        page = tracked_api.get("/v1/suppressions", params=params, headers=ALICE).json()
        seen += [entry["address"] for entry in page["suppressions"]]
        pages += 1
        cursor = page["cursor"]
        if cursor is None:
            break
    assert seen == addresses and pages == 3


def test_one_keys_list_is_invisible_to_another(tracked_api: TestClient) -> None:
    add(tracked_api, "private@example.com")
    assert tracked_api.get("/v1/suppressions", headers=BOB).json()["suppressions"] == []
    assert tracked_api.get("/v1/suppressions/private@example.com", headers=BOB).status_code == 404
    assert (
        tracked_api.delete("/v1/suppressions/private@example.com", headers=BOB).status_code == 404
    )
    assert tracked_api.get("/v1/suppressions/private@example.com", headers=ALICE).status_code == 200
    # Bob's mail to the address goes out: the list is Alice's.
    assert (
        tracked_api.post(
            "/v1/mail", json={**VALID, "to": ["private@example.com"]}, headers=BOB
        ).status_code
        == 200
    )


def test_bad_entries_limits_and_cursors_are_400_in_the_json_shape(tracked_api: TestClient) -> None:
    for body in (
        {"address": "not an address", "reason": "x"},
        {"address": "a@example.com"},
        {"address": "a@example.com", "reason": "line\nbreak"},
        {"address": "a@example.com", "reason": "x", "extra": 1},
    ):
        answer = tracked_api.post("/v1/suppressions", json=body, headers=ALICE)
        assert answer.status_code == 400, body
        assert set(answer.json()) == {"Message", "Problem"}
    assert tracked_api.get("/v1/suppressions?limit=0", headers=ALICE).status_code == 400
    assert tracked_api.get("/v1/suppressions?limit=101", headers=ALICE).status_code == 400
    assert tracked_api.get("/v1/suppressions?cursor=%%%", headers=ALICE).status_code == 400


def test_the_routes_need_an_api_key(tracked_api: TestClient) -> None:
    assert tracked_api.get("/v1/suppressions").status_code == 401
    assert (
        tracked_api.post(
            "/v1/suppressions", json={"address": "a@example.com", "reason": "x"}
        ).status_code
        == 401
    )


def test_a_send_leaves_suppressed_recipients_out_and_says_so(tracked_api: TestClient) -> None:
    add(tracked_api, "gone@example.com")
    mail = {
        **VALID,
        "to": ["Gone <GONE@example.com>", "here@example.com"],
        "cc": ["gone@example.com"],
    }
    answer = tracked_api.post("/v1/mail", json=mail, headers=ALICE)
    assert answer.status_code == 200
    assert answer.json()["suppressed"] == ["Gone <GONE@example.com>", "gone@example.com"]
    record = tracked_api.get(f"/v1/mail/{answer.json()['id']}", headers=ALICE).json()
    assert record["suppressed"] == answer.json()["suppressed"]
    assert record["recipients"] == 1


def test_a_send_to_only_suppressed_recipients_is_422_naming_them(tracked_api: TestClient) -> None:
    add(tracked_api, "gone@example.com")
    answer = tracked_api.post("/v1/mail", json={**VALID, "to": ["gone@example.com"]}, headers=ALICE)
    assert answer.status_code == 422
    assert answer.json()["Message"] == "not submitted"
    assert "gone@example.com" in answer.json()["Problem"]
    assert answer.json()["suppressed"] == ["gone@example.com"]


def test_with_the_check_disabled_suppressed_recipients_are_sent_to(
    tracked_api_factory: ApiFactory,
) -> None:
    api = tracked_api_factory(suppression="disabled")
    add(api, "gone@example.com")
    answer = api.post("/v1/mail", json={**VALID, "to": ["gone@example.com"]}, headers=ALICE)
    assert answer.status_code == 200 and "suppressed" not in answer.json()


def _batch_gets() -> float:
    return (
        REGISTRY.get_sample_value(
            "limbo_status_store_calls_total", {"operation": "batch_get_item", "result": "ok"}
        )
        or 0.0
    )


def test_a_batch_leaves_suppressed_recipients_out_per_email(tracked_api: TestClient) -> None:
    add(tracked_api, "gone@example.com")
    add(tracked_api, "left@example.com")
    batch = [
        {**VALID, "to": ["gone@example.com", "here@example.com"]},
        {**VALID, "to": ["Gone <GONE@example.com>"], "bcc": ["left@example.com"]},
        {**VALID, "to": ["other@example.com"]},
    ]
    before = _batch_gets()
    answer = tracked_api.post("/v1/mail/batch", json=batch, headers=ALICE)
    # One lookup for every address of the batch (3 emails, 5 addresses).
    assert _batch_gets() - before == 1
    assert answer.status_code == 200
    body = answer.json()
    assert body["Message"] == "submitted"
    first, refused, third = body["ids"]
    assert refused is None and first and third
    assert body["suppressed"] == [
        ["gone@example.com"],
        ["Gone <GONE@example.com>", "left@example.com"],
        [],
    ]
    assert body["refused"] == [
        {
            "index": 1,
            "Problem": "every To recipient is on the suppression list: "
            "Gone <GONE@example.com>, left@example.com",
        }
    ]
    documented = tracked_api.get("/openapi.json").json()["components"]["schemas"]
    jsonschema.validate(body, documented["SubmittedBatch"])
    record = tracked_api.get(f"/v1/mail/{first}", headers=ALICE).json()
    assert (record["recipients"], record["suppressed"]) == (1, ["gone@example.com"])
    assert tracked_api.get(f"/v1/mail/{third}", headers=ALICE).json()["suppressed"] == []


def test_a_batch_without_suppressed_recipients_answers_as_before(tracked_api: TestClient) -> None:
    answer = tracked_api.post("/v1/mail/batch", json=[VALID, VALID], headers=ALICE)
    assert answer.status_code == 200
    assert set(answer.json()) == {"Message", "ids"} and None not in answer.json()["ids"]


def test_a_batch_of_only_suppressed_emails_is_422_naming_them(tracked_api: TestClient) -> None:
    add(tracked_api, "gone@example.com")
    batch = [{**VALID, "to": ["gone@example.com"]}, {**VALID, "to": ["GONE@example.com"]}]
    answer = tracked_api.post("/v1/mail/batch", json=batch, headers=ALICE)
    assert answer.status_code == 422
    assert answer.json()["Message"] == "not submitted"
    assert answer.json()["suppressed"] == [["gone@example.com"], ["GONE@example.com"]]
    operation = tracked_api.get("/openapi.json").json()["paths"]["/v1/mail/batch"]["post"]
    documented = operation["responses"]["422"]["content"]["application/json"]["schema"]
    jsonschema.validate(answer.json(), documented)


def test_any_well_formed_cursor_is_a_position_in_the_list(tracked_api: TestClient) -> None:
    for address in ("a@example.com", "b@example.com", "c@example.com"):
        add(tracked_api, address)

    def listed(cursor: str) -> Any:
        return tracked_api.get("/v1/suppressions", params={"cursor": cursor}, headers=ALICE)

    after_a = base64.urlsafe_b64encode(b"a@example.com").decode().rstrip("=")
    assert [e["address"] for e in listed(after_a).json()["suppressions"]] == [
        "b@example.com",
        "c@example.com",
    ]
    # Not one the API handed out (not even UTF-8: U+FFFD, after every ASCII address).
    assert listed("_w").json() == {"suppressions": [], "cursor": None}
    assert len(listed("").json()["suppressions"]) == 3  # from the start
    for malformed in ("A", "AAAAA", "a b", "AA==", "A" * (MAX_CURSOR + 1)):
        answer = listed(malformed)
        assert answer.status_code == 400, malformed
        assert "cursor" in answer.json()["Problem"]


def test_a_reason_is_one_line_to_its_very_end(tracked_api: TestClient) -> None:
    answer = add(tracked_api, "a@example.com", reason="trailing\n")
    assert answer.status_code == 400 and answer.json()["Problem"].startswith("reason")
    assert add(tracked_api, "a@example.com", reason="x" * 501).status_code == 400
    assert add(tracked_api, "a@example.com", reason="😀 " * 166).status_code == 201


def test_an_address_longer_than_any_is_not_suppressed(tracked_api: TestClient) -> None:
    long = "a" * 400 + "@example.com"
    assert tracked_api.get(f"/v1/suppressions/{long}", headers=ALICE).status_code == 404
    assert tracked_api.delete(f"/v1/suppressions/{long}", headers=ALICE).status_code == 404


def test_an_address_with_a_slash_is_found_by_its_encoded_path(tracked_api: TestClient) -> None:
    assert add(tracked_api, "/z@example.com").status_code == 201
    assert tracked_api.get("/v1/suppressions/%2Fz%40example.com", headers=ALICE).status_code == 200
    assert tracked_api.delete("/v1/suppressions/%2Fz@example.com", headers=ALICE).status_code == 200


def test_each_suppressed_recipient_of_a_queued_message_is_told_to_webhooks(
    tracked_aws: LocalAws, tracked_api_factory: ApiFactory
) -> None:
    assert tracked_aws.webhook_queue_url is not None
    api = tracked_api_factory(webhook_queue=tracked_aws.webhook_queue_url)
    endpoint = api.post(
        "/v1/webhooks",
        json={"url": "https://hooks.example.com/x", "events": ["suppressed"]},
        headers=ALICE,
    ).json()
    add(api, "gone@example.com")
    answer = api.post(
        "/v1/mail",
        json={**VALID, "to": ["here@example.com"], "cc": ["gone@example.com"]},
        headers=ALICE,
    ).json()
    sqs = boto3.client("sqs", endpoint_url=tracked_aws.endpoint, region_name=tracked_aws.region)
    told: list[DeliveryJob] = []
    deadline = time.monotonic() + 30
    while not told and time.monotonic() < deadline:
        received = sqs.receive_message(
            QueueUrl=tracked_aws.webhook_queue_url, MaxNumberOfMessages=10, WaitTimeSeconds=1
        )
        told += [DeliveryJob.model_validate_json(m["Body"]) for m in received.get("Messages", [])]
    [job] = told
    assert (job.owner, job.endpoint_id, job.event) == ("alice", endpoint["id"], "suppressed")
    assert json.loads(job.body)["data"] == {
        "message_id": answer["id"],
        "status": "suppressed",
        "recipient": "gone@example.com",
    }
