"""The public contract of the API: paths, shapes and status codes."""

from __future__ import annotations

import json
from typing import Any

import boto3
import pytest
from starlette.testclient import TestClient

from limbo_devtools.local_aws import LocalAws
from limbo_shared.schema import QueuedMail

from .conftest import VALID


def receive_all(aws: LocalAws) -> list[dict[str, Any]]:
    sqs = boto3.client("sqs", endpoint_url=aws.endpoint, region_name=aws.region)
    messages: list[dict[str, Any]] = []
    while True:
        batch = sqs.receive_message(
            QueueUrl=aws.queue_url,
            MaxNumberOfMessages=10,
            MessageAttributeNames=["All"],
            MessageSystemAttributeNames=["All"],
            WaitTimeSeconds=0,
        ).get("Messages", [])
        if not batch:
            return messages
        messages += batch
        for message in batch:
            sqs.delete_message(QueueUrl=aws.queue_url, ReceiptHandle=message["ReceiptHandle"])


def test_hello_and_health(api: TestClient) -> None:
    assert api.get("/").json() == {"hello": "world"}
    assert api.get("/health").json() == {"health": "ok"}


def test_ready_when_queue_reachable(api: TestClient) -> None:
    response = api.get("/ready")
    assert response.status_code == 200 and response.json()["ready"] is True


def test_metrics_text_and_json(api: TestClient) -> None:
    api.post("/v1/mail", json=VALID)
    text = api.get("/metrics")
    assert text.headers["content-type"].startswith("text/plain")
    assert "limbo_api_messages_published_total" in text.text
    summary = api.get("/metrics", headers={"Accept": "application/json"}).json()
    assert summary["metrics"] == "ok"
    assert summary["values"]["limbo_api_messages_published_total"] >= 1


def test_submitted_mail_is_on_the_queue(api: TestClient, aws: LocalAws) -> None:
    response = api.post("/v1/mail", json={**VALID, "cc": ["cc@example.com"]})
    assert response.status_code == 200
    body = response.json()
    assert body["Message"] == "submitted"
    [message] = receive_all(aws)
    envelope = QueuedMail.from_json(message["Body"])
    assert envelope.id == body["id"]
    assert envelope.mail.cc == ["cc@example.com"]
    assert message["Attributes"]["MessageDeduplicationId"] == body["id"]
    assert message["Attributes"]["MessageGroupId"].startswith("default.")
    assert "traceparent" in message["MessageAttributes"]


def test_consecutive_mail_takes_consecutive_lanes(api: TestClient, aws: LocalAws) -> None:
    ids = [api.post("/v1/mail", json=VALID).json()["id"] for _ in range(3)]
    groups = {
        m["Attributes"]["MessageDeduplicationId"]: m["Attributes"]["MessageGroupId"]
        for m in receive_all(aws)
    }
    lanes = [int(groups[message_id].removeprefix("default.")) for message_id in ids]
    assert lanes == [(lanes[0] + i) % 16 for i in range(3)]


def test_burst_is_published_without_loss(api: TestClient, aws: LocalAws) -> None:
    from concurrent.futures import ThreadPoolExecutor

    with ThreadPoolExecutor(16) as pool:
        responses = list(
            pool.map(lambda i: api.post("/v1/mail", json={**VALID, "subject": f"n{i}"}), range(40))
        )
    assert all(r.status_code == 200 for r in responses)
    ids = {r.json()["id"] for r in responses}
    queued = {QueuedMail.from_json(m["Body"]).id for m in receive_all(aws)}
    assert queued == ids


def problem_of(response: Any) -> str:
    body = response.json()
    assert set(body) == {"Message", "Problem"}
    assert body["Message"] == "not submitted"
    return str(body["Problem"])


@pytest.mark.parametrize(
    "body,named",
    [
        (b"not json", "JSON"),
        (b"[1, 2]", "object"),
        (b'"text"', "object"),
        (b"", "empty"),
        (json.dumps({**VALID, "to": "x@example.com"}).encode(), "to"),
        (json.dumps({k: v for k, v in VALID.items() if k != "from"}).encode(), "from"),
        (json.dumps({**VALID, "from": "nope"}).encode(), "from"),
        (json.dumps({**VALID, "to": ["a@example.com\nBcc: b@example.com"]}).encode(), "to[0]"),
        (json.dumps({**VALID, "subject": "x\r\nBcc: b@example.com"}).encode(), "subject"),
        (json.dumps({**VALID, "headers": {"X-A": "v\nBcc: b@example.com"}}).encode(), "headers"),
        (json.dumps({**VALID, "to": [f"r{i}@example.com" for i in range(51)]}).encode(), "50"),
        (b'{"from": "a@example.com", "from": "b@example.com"}', "more than once"),
        (b"[" * 100_000 + b"]" * 100_000, "nested"),
        (b'{"subject": "\\ud800"}', ""),
    ],
)
def test_bad_input_gets_400_naming_the_problem(
    api: TestClient, aws: LocalAws, body: bytes, named: str
) -> None:
    response = api.post("/v1/mail", content=body, headers={"Content-Type": "application/json"})
    assert response.status_code == 400
    assert named in problem_of(response)
    assert receive_all(aws) == []


def test_lone_surrogate_is_a_400_not_a_500(api: TestClient) -> None:
    body = json.dumps({**VALID, "message": "x"}).replace('"x"', '"\\ud800"')
    response = api.post("/v1/mail", content=body, headers={"Content-Type": "application/json"})
    assert response.status_code == 400
    problem_of(response)


def test_wrong_content_type_is_415(api: TestClient) -> None:
    response = api.post("/v1/mail", content=b"from=a", headers={"Content-Type": "text/plain"})
    assert response.status_code == 415
    assert "Content-Type" in problem_of(response)


def test_oversized_body_is_413(api: TestClient) -> None:
    response = api.post("/v1/mail", json={**VALID, "message": "x" * (14 * 1_048_576 + 1)})
    assert response.status_code == 413
    assert "MAX_REQUEST_BYTES" in problem_of(response)


def test_message_over_one_sqs_message_is_413_without_a_payload_bucket(api: TestClient) -> None:
    response = api.post("/v1/mail", json={**VALID, "message": "x" * 1_100_000})
    assert response.status_code == 413
    assert "PAYLOAD_BUCKET is unset" in problem_of(response)


def test_unknown_route_and_method(api: TestClient) -> None:
    assert api.get("/nope").status_code == 404
    assert api.get("/v1/mail").status_code == 405


def test_openapi_is_generated_from_the_validating_model(api: TestClient) -> None:
    document = api.get("/openapi.json").json()
    schema = document["components"]["schemas"]["MailRequest"]
    assert set(schema["required"]) == {"from", "to", "subject", "message"}
    assert schema["additionalProperties"] is False
    assert "/v1/mail" in document["paths"]


@pytest.mark.parametrize("path", ["/v1/mail/", "/v1/mail/x/", "/health/"])
def test_a_trailing_slash_is_a_json_404_or_405_never_a_redirect(api: TestClient, path: str) -> None:
    response = api.post(path, json=VALID, headers={"Host": "evil.example"}, follow_redirects=False)
    assert response.status_code in (404, 405)
    assert "location" not in response.headers
    assert set(response.json()) == {"Message", "Problem"}


TRACE_ID = "0af7651916cd43dd8448eb211c80319c"
TRACEPARENT = f"00-{TRACE_ID}-b7ad6b7169203331-01"


def test_oversize_client_trace_headers_are_dropped_and_the_mail_still_fits(
    api: TestClient, aws: LocalAws
) -> None:
    huge_state = ",".join(f"k{i}=" + "v" * 200 for i in range(32))  # ~6.6 KB, 32 members
    huge_baggage = ",".join(f"b{i}=" + "v" * 40 for i in range(180))  # ~8 KB
    response = api.post(
        "/v1/mail",
        json=VALID,
        headers={"traceparent": TRACEPARENT, "tracestate": huge_state, "baggage": huge_baggage},
    )
    assert response.status_code == 200
    [message] = receive_all(aws)
    attributes = message["MessageAttributes"]
    # The trace goes on (traceparent is small); the oversize fields are gone.
    assert TRACE_ID in attributes["traceparent"]["StringValue"]
    assert "tracestate" not in attributes and "baggage" not in attributes


def test_trace_headers_within_bounds_are_carried(api: TestClient, aws: LocalAws) -> None:
    response = api.post(
        "/v1/mail",
        json=VALID,
        headers={"traceparent": TRACEPARENT, "tracestate": "vendor=abc", "baggage": "k=v"},
    )
    assert response.status_code == 200
    [message] = receive_all(aws)
    attributes = message["MessageAttributes"]
    assert attributes["tracestate"]["StringValue"] == "vendor=abc"
    assert attributes["baggage"]["StringValue"] == "k=v"
