"""Idempotency-Key: a repeat gets the first answer and queues nothing; a misuse is a 409."""

from __future__ import annotations

import json
import threading
import time
from concurrent.futures import ThreadPoolExecutor
from typing import Any

from starlette.testclient import TestClient

from limbo_devtools.local_aws import LocalAws
from limbo_shared.schema import QueuedMail

from ..holding_proxy import HoldingProxy
from .conftest import ALICE_KEY, BOB_KEY, VALID, ApiFactory, api_settings, bearer
from .test_routes import receive_all

SEND_BATCH = "AmazonSQS.SendMessageBatch"


def post(api: TestClient, key: str, body: dict[str, Any] = VALID, api_key: str = ALICE_KEY) -> Any:
    return api.post("/v1/mail", json=body, headers={**bearer(api_key), "Idempotency-Key": key})


def queued_ids(aws: LocalAws) -> list[str]:
    return [QueuedMail.from_json(m["Body"]).id for m in receive_all(aws)]


def wait_until(predicate: Any, timeout: float = 10.0) -> None:
    deadline = time.monotonic() + timeout
    while not predicate():
        assert time.monotonic() < deadline, "condition not met in time"
        time.sleep(0.02)


def test_a_repeat_with_the_same_body_gets_the_first_answer_and_queues_nothing(
    tracked_api: TestClient, tracked_aws: LocalAws
) -> None:
    first = post(tracked_api, "order-1")
    assert first.status_code == 200 and "Idempotent-Replayed" not in first.headers
    # The same body written differently (key order, spacing) is still the same body.
    same = json.dumps(dict(reversed(list(VALID.items()))), indent=2)
    repeat = tracked_api.post(
        "/v1/mail",
        content=same,
        headers={
            **bearer(ALICE_KEY),
            "Idempotency-Key": "order-1",
            "Content-Type": "application/json",
        },
    )
    assert repeat.status_code == 200
    assert repeat.json() == first.json()
    assert repeat.headers["Idempotent-Replayed"] == "true"
    assert queued_ids(tracked_aws) == [first.json()["id"]]


def test_a_repeat_with_a_different_body_is_a_409(
    tracked_api: TestClient, tracked_aws: LocalAws
) -> None:
    first = post(tracked_api, "order-2")
    conflict = post(tracked_api, "order-2", {**VALID, "subject": "Changed"})
    assert conflict.status_code == 409
    assert conflict.json() == {
        "Message": "not submitted",
        "Problem": "Idempotency-Key was already used with a different body",
    }
    assert queued_ids(tracked_aws) == [first.json()["id"]]


def test_keys_are_scoped_to_the_api_key(tracked_api: TestClient, tracked_aws: LocalAws) -> None:
    alice = post(tracked_api, "same-key")
    bob = post(tracked_api, "same-key", api_key=BOB_KEY)
    assert alice.status_code == bob.status_code == 200
    assert alice.json()["id"] != bob.json()["id"]
    assert len(queued_ids(tracked_aws)) == 2


def test_a_repeat_while_the_first_is_in_progress_is_a_409_then_a_replay(
    tracked_api_factory: ApiFactory, tracked_aws: LocalAws, holding_proxy: HoldingProxy
) -> None:
    api = tracked_api_factory(endpoint=holding_proxy.url)
    holding_proxy.hold(SEND_BATCH)
    answers: list[Any] = []
    first = threading.Thread(target=lambda: answers.append(post(api, "slow-1")))
    first.start()
    wait_until(lambda: holding_proxy.waiting(SEND_BATCH) == 1)

    busy = post(api, "slow-1")
    assert busy.status_code == 409
    assert "still being processed" in busy.json()["Problem"]
    assert busy.headers["Retry-After"] == "1"

    holding_proxy.release(SEND_BATCH)
    first.join(10)
    [answer] = answers
    assert answer.status_code == 200
    replay = post(api, "slow-1")
    assert replay.json()["id"] == answer.json()["id"]
    assert queued_ids(tracked_aws) == [answer.json()["id"]]


def test_many_concurrent_repeats_queue_one_message(
    tracked_api: TestClient, tracked_aws: LocalAws
) -> None:
    with ThreadPoolExecutor(12) as pool:
        responses = list(pool.map(lambda _: post(tracked_api, "burst-1"), range(12)))
    ok = [r for r in responses if r.status_code == 200]
    busy = [r for r in responses if r.status_code == 409]
    assert len(ok) + len(busy) == 12 and ok
    assert len({r.json()["id"] for r in ok}) == 1
    assert all("still being processed" in r.json()["Problem"] for r in busy)
    assert queued_ids(tracked_aws) == [ok[0].json()["id"]]


def test_a_timed_out_publish_is_retried_under_the_same_id_and_queued_once(
    tracked_api_factory: ApiFactory, tracked_aws: LocalAws, holding_proxy: HoldingProxy
) -> None:
    """The first publish times out but reaches SQS later; the client's retry must not
    produce a second message under a new id."""
    api = tracked_api_factory(endpoint=holding_proxy.url, publish_timeout=1)
    holding_proxy.hold(SEND_BATCH)
    timed_out = post(api, "ambiguous-1")
    assert timed_out.status_code == 503
    holding_proxy.release(SEND_BATCH)  # the first publish lands after all
    retry = post(api, "ambiguous-1")
    assert retry.status_code == 200
    ids = queued_ids(tracked_aws)
    assert ids == [retry.json()["id"]]
    record = api.get(f"/v1/mail/{ids[0]}", headers=bearer(ALICE_KEY)).json()
    assert record["status"] == "queued"


def test_the_key_is_at_most_256_characters(tracked_api: TestClient) -> None:
    assert post(tracked_api, "k" * 256).status_code == 200
    too_long = post(tracked_api, "k" * 257)
    assert too_long.status_code == 400
    assert "Idempotency-Key" in too_long.json()["Problem"]


def test_without_tracking_a_key_is_refused_not_ignored(
    tracked_api_factory: ApiFactory, tracked_aws: LocalAws
) -> None:
    api = tracked_api_factory(status_table=None)
    response = post(api, "order-9")
    assert response.status_code == 501
    assert "STATUS_TABLE" in response.json()["Problem"]
    assert queued_ids(tracked_aws) == []
    assert api_settings(tracked_aws).status_table is None  # the factory really turned it off
