"""Streams: a request's `stream`, else its key's default (BULK_KEYS), picks the queue."""

from __future__ import annotations

import json
import time
from concurrent.futures import ThreadPoolExecutor
from typing import Any

from starlette.testclient import TestClient

from limbo_api.app import create_app
from limbo_api.auth import hash_key
from limbo_devtools.local_aws import LocalAws
from limbo_shared.aws import make_client
from limbo_shared.queue import SqsQueue
from limbo_shared.scheduling import STREAM_ATTRIBUTE

from .conftest import _METRICS, ALICE_KEY, BOB_KEY, VALID, api_settings, bearer


def queued(aws: LocalAws, url: str) -> list[dict[str, Any]]:
    sqs = make_client("sqs", region=aws.region, endpoint_url=aws.endpoint)
    messages = sqs.receive_message(
        QueueUrl=url, MaxNumberOfMessages=10, MessageSystemAttributeNames=["MessageGroupId"]
    ).get("Messages", [])
    return [json.loads(m["Body"]) | {"group": m["Attributes"]["MessageGroupId"]} for m in messages]


def streams_api(aws: LocalAws, **extra: Any) -> TestClient:
    assert aws.bulk_queue_url is not None
    settings = api_settings(
        aws,
        auth="enabled",
        api_keys=f"alice={hash_key(ALICE_KEY)},bob={hash_key(BOB_KEY)}",
        bulk_queue=aws.bulk_queue_url,
        bulk_keys="bob",
        **extra,
    )
    client = make_client("sqs", region=aws.region, endpoint_url=aws.endpoint)
    executor = ThreadPoolExecutor(4)
    return TestClient(
        create_app(
            settings,
            SqsQueue(client, aws.queue_url, executor),
            _METRICS,
            bulk_queue=SqsQueue(client, aws.bulk_queue_url, executor),
        )
    )


def test_each_stream_has_its_own_queue_and_a_key_has_a_default(aws: LocalAws) -> None:
    assert aws.bulk_queue_url is not None
    with streams_api(aws) as api:
        for key, body in [
            (ALICE_KEY, VALID),  # alice: transactional by default
            (ALICE_KEY, {**VALID, "stream": "bulk"}),
            (BOB_KEY, VALID),  # bob is in BULK_KEYS
            (BOB_KEY, {**VALID, "stream": "transactional"}),
        ]:
            response = api.post("/v1/mail", json=body, headers=bearer(key))
            assert response.status_code == 200, response.text
    transactional = queued(aws, aws.queue_url)
    bulk = queued(aws, aws.bulk_queue_url)
    assert sorted((m["owner"], m["stream"]) for m in transactional) == [
        ("alice", "transactional"),
        ("bob", "transactional"),
    ]
    assert sorted((m["owner"], m["stream"]) for m in bulk) == [("alice", "bulk"), ("bob", "bulk")]
    # Inside a stream, each key keeps its own lanes (fairness between keys).
    assert all(m["group"].startswith(f"{m['owner']}.") for m in transactional + bulk)


def test_an_unknown_stream_is_refused_with_the_field_named(aws: LocalAws) -> None:
    with streams_api(aws) as api:
        response = api.post(
            "/v1/mail", json={**VALID, "stream": "marketing"}, headers=bearer(ALICE_KEY)
        )
    assert response.status_code == 400
    assert response.json()["Message"] and "stream" in response.json()["Problem"]


def test_a_batch_and_a_scheduled_message_keep_their_stream(aws: LocalAws) -> None:
    assert aws.bulk_queue_url is not None and aws.schedule_queue_url is not None
    later = time.strftime("%Y-%m-%dT%H:%M:%SZ", time.gmtime(time.time() + 3))
    with streams_api(aws, schedule_queue=aws.schedule_queue_url) as api:
        batch = [VALID, {**VALID, "stream": "transactional"}]
        response = api.post("/v1/mail/batch", json=batch, headers=bearer(BOB_KEY))
        assert response.status_code == 200, response.text
        scheduled = {**VALID, "scheduled_at": later}
        response = api.post("/v1/mail", json=scheduled, headers=bearer(BOB_KEY))
        assert response.status_code == 200, response.text
    assert [m["stream"] for m in queued(aws, aws.bulk_queue_url)] == ["bulk"]
    assert [m["stream"] for m in queued(aws, aws.queue_url)] == ["transactional"]
    # The scheduler reads the stream from an attribute (it never reads the body).
    sqs = make_client("sqs", region=aws.region, endpoint_url=aws.endpoint)
    # (It is delayed on the schedule queue until due, a few seconds from now.)
    [waiting] = sqs.receive_message(
        QueueUrl=aws.schedule_queue_url,
        MaxNumberOfMessages=10,
        MessageAttributeNames=["All"],
        WaitTimeSeconds=20,
    )["Messages"]
    assert waiting["MessageAttributes"][STREAM_ATTRIBUTE]["StringValue"] == "bulk"
