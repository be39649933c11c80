"""``/v1/webhooks``: endpoints per API key, the secret shown once, the destination rules
at registration, and 501 without tracking. In-process app, real moto over HTTP."""

from __future__ import annotations

from typing import Any

from standardwebhooks.webhooks import Webhook
from starlette.testclient import TestClient

from .conftest import ALICE_KEY, BOB_KEY, ApiFactory, bearer

ALICE, BOB = bearer(ALICE_KEY), bearer(BOB_KEY)
GOOD = {"url": "https://hooks.example.com/limbo", "events": ["sent", "bounced"]}


def register(api: TestClient, body: Any = GOOD, headers: dict[str, str] = ALICE) -> Any:
    if isinstance(body, bytes):
        return api.post("/v1/webhooks", content=body, headers=headers)
    return api.post("/v1/webhooks", json=body, headers=headers)


def test_registration_answers_the_secret_once(tracked_api: TestClient) -> None:
    created = register(tracked_api)
    assert created.status_code == 201, created.text
    body = created.json()
    assert body["id"].startswith("ep_")
    assert body["url"] == GOOD["url"]
    assert body["events"] == ["sent", "bounced"]
    assert body["enabled"] is True
    # A Standard Webhooks secret: the reference library takes it.
    assert body["secret"].startswith("whsec_")
    Webhook(body["secret"])
    listed = tracked_api.get("/v1/webhooks", headers=ALICE).json()["data"]
    assert [e["id"] for e in listed] == [body["id"]]
    shown = tracked_api.get(f"/v1/webhooks/{body['id']}", headers=ALICE).json()
    assert shown["attempts"] == [] and shown["failing_since"] is None
    for answer in (listed[0], shown):
        assert "secret" not in answer
        assert body["secret"] not in str(answer)


def test_endpoints_belong_to_their_api_key(tracked_api: TestClient) -> None:
    endpoint = register(tracked_api).json()["id"]
    assert tracked_api.get("/v1/webhooks", headers=BOB).json()["data"] == []
    for method, path in (
        ("GET", f"/v1/webhooks/{endpoint}"),
        ("DELETE", f"/v1/webhooks/{endpoint}"),
        ("POST", f"/v1/webhooks/{endpoint}/rotate"),
    ):
        answer = tracked_api.request(method, path, headers=BOB)
        assert answer.status_code == 404, (method, path)
        assert answer.json()["Problem"] == f"no webhook endpoint {endpoint!r} for this API key"
    assert tracked_api.get(f"/v1/webhooks/{endpoint}", headers=ALICE).status_code == 200


def test_delete_removes_the_endpoint(tracked_api: TestClient) -> None:
    endpoint = register(tracked_api).json()["id"]
    assert tracked_api.delete(f"/v1/webhooks/{endpoint}", headers=ALICE).status_code == 204
    assert tracked_api.get("/v1/webhooks", headers=ALICE).json()["data"] == []
    assert tracked_api.delete(f"/v1/webhooks/{endpoint}", headers=ALICE).status_code == 404


def test_rotation_answers_a_new_secret(tracked_api: TestClient) -> None:
    created = register(tracked_api).json()
    rotated = tracked_api.post(f"/v1/webhooks/{created['id']}/rotate", headers=ALICE)
    assert rotated.status_code == 200
    assert rotated.json()["secret"].startswith("whsec_")
    assert rotated.json()["secret"] != created["secret"]
    assert rotated.json()["id"] == created["id"]


MALFORMED = [
    ({"url": "https://a.example.com"}, "events: is required"),
    ({"url": "https://a.example.com", "events": []}, "events: List should have at least 1"),
    ({"url": "https://a.example.com", "events": ["opened"]}, "'opened' is not an event type"),
    ({"url": "https://a.example.com", "events": ["sent", "sent"]}, "lists an event type twice"),
    ({**GOOD, "extra": 1}, "extra: is not a known field"),
    ({**GOOD, "url": 7}, "url: Input should be a valid string"),
    # The schema's pattern: printable ASCII, as a URL is (percent-encode the rest).
    ({**GOOD, "url": "https://hooks.example.com/\U000958a4"}, "url: must be printable ASCII"),
    ({**GOOD, "url": "https://hooks.example.com/a b"}, "url: must be printable ASCII"),
    ({**GOOD, "url": "https://hooks.example.com/" + "a" * 2048}, "url: String should have at most"),
]


def test_malformed_registrations_are_422_naming_the_field(tracked_api: TestClient) -> None:
    # One app and table for all the cases: each is a request, not a system.
    for body, problem in MALFORMED:
        answer = register(tracked_api, body)
        assert answer.status_code == 422, body
        assert answer.json()["Message"] == "not registered"
        assert problem in answer.json()["Problem"], body
    assert register(tracked_api, b"[1]").status_code == 400  # not an object


REFUSED = [
    ("http://hooks.example.com/", "must be https"),
    ("ftp://hooks.example.com/", "must be an https:// URL"),
    ("https://127.0.0.1/", "non-public address"),
    ("https://10.1.2.3/", "non-public address"),
    ("https://169.254.169.254/latest/meta-data", "non-public address"),
    ("https://100.64.0.1/", "non-public address"),
    ("https://[::1]/", "non-public address"),
    ("https://[::ffff:127.0.0.1]/", "non-public address"),
    ("https://[fd00:ec2::254]/", "non-public address"),
    ("https://localhost:8443/", "loopback name"),
    ("https://user:pw@hooks.example.com/", "must not carry credentials"),
    ("https:///nohost", "must name a host"),
]


def test_destinations_webhooks_may_not_reach_are_refused_at_registration(
    tracked_api: TestClient,
) -> None:
    for url, problem in REFUSED:
        answer = register(tracked_api, {"url": url, "events": ["sent"]})
        assert answer.status_code == 422, url
        assert problem in answer.json()["Problem"], url
    assert tracked_api.get("/v1/webhooks", headers=ALICE).json()["data"] == []


def test_the_operator_allow_list_permits_internal_receivers(
    tracked_api_factory: ApiFactory,
) -> None:
    api = tracked_api_factory(webhook_allow_hosts="127.0.0.1,10.0.0.0/8", webhook_allow_http=True)
    for url in ("http://127.0.0.1:9000/hooks", "https://10.1.2.3/hooks"):
        assert register(api, {"url": url, "events": ["sent"]}).status_code == 201, url
    assert register(api, {"url": "http://192.168.1.1/", "events": ["sent"]}).status_code == 422


def test_an_api_key_has_at_most_ten_endpoints(tracked_api: TestClient) -> None:
    for _ in range(10):
        assert register(tracked_api).status_code == 201
    refused = register(tracked_api)
    assert refused.status_code == 409
    assert "10 endpoints" in refused.json()["Problem"]


def test_without_tracking_webhooks_say_so(tracked_api_factory: ApiFactory) -> None:
    api = tracked_api_factory(status_table=None)
    for method, path in (
        ("POST", "/v1/webhooks"),
        ("GET", "/v1/webhooks"),
        ("GET", "/v1/webhooks/ep_00000000000000000000000000000000"),
    ):
        answer = api.request(method, path, headers=ALICE, json=GOOD)
        assert answer.status_code == 501
        assert "STATUS_TABLE is unset" in answer.json()["Problem"]
