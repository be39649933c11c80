"""The API's SQS client: an unanswered publish to the FIFO queue is sent again, and
SQS's deduplication keeps it one message."""

from __future__ import annotations

import threading
from typing import Any

from limbo_devtools.local_aws import LocalAws

from ..holding_proxy import HoldingProxy
from .conftest import ALICE_KEY, VALID, ApiFactory, bearer
from .test_idempotency import SEND_BATCH, queued_ids, wait_until


def test_a_publish_that_got_no_answer_is_sent_again_and_queued_once(
    api_factory: ApiFactory, aws: LocalAws, holding_proxy: HoldingProxy
) -> None:
    api = api_factory(endpoint=holding_proxy.url)
    holding_proxy.hold(SEND_BATCH)
    answers: list[Any] = []
    request = threading.Thread(
        target=lambda: answers.append(api.post("/v1/mail", json=VALID, headers=bearer(ALICE_KEY)))
    )
    request.start()
    # The first attempt gets no answer within connect + read (7 s); the second arrives.
    wait_until(lambda: holding_proxy.waiting(SEND_BATCH) == 2, timeout=30)
    # Both reach SQS now: the first too, as a request SQS got but never answered would.
    holding_proxy.release(SEND_BATCH)
    request.join(30)
    [answer] = answers
    assert answer.status_code == 200, answer.text
    assert queued_ids(aws) == [answer.json()["id"]]
    assert holding_proxy.distinct(SEND_BATCH) == 1  # the same request, twice
