"""A token bucket per API key: bursts up to RATE_BURST, then 429 with Retry-After."""

from __future__ import annotations

import math
import time

from starlette.testclient import TestClient

from limbo_api.ratelimit import TokenBuckets

from .conftest import ALICE_KEY, BOB_KEY, VALID, ApiFactory, bearer


class Clock:
    def __init__(self) -> None:
        self.now = 100.0

    def __call__(self) -> float:
        return self.now


def test_a_bucket_allows_its_burst_then_refills_at_its_rate() -> None:
    clock = Clock()
    buckets = TokenBuckets(rate=2.0, burst=3, clock=clock)
    assert [buckets.take("a") for _ in range(3)] == [0.0, 0.0, 0.0]
    assert buckets.take("a") == 0.5  # one token takes half a second at 2/s
    assert buckets.take("b") == 0.0  # another key has its own bucket
    clock.now += 0.5
    assert buckets.take("a") == 0.0
    clock.now += 100
    assert [buckets.take("a") for _ in range(4)][-1] > 0  # never more than the burst


def test_over_the_limit_is_429_with_retry_after_for_that_key_only(
    tracked_api_factory: ApiFactory,
) -> None:
    api: TestClient = tracked_api_factory(rate_limit=0.1, rate_burst=2)
    started = time.monotonic()
    statuses = [
        api.post("/v1/mail", json=VALID, headers=bearer(ALICE_KEY)).status_code for _ in range(2)
    ]
    assert statuses == [200, 200]
    refused = api.post("/v1/mail", json=VALID, headers=bearer(ALICE_KEY))
    elapsed = time.monotonic() - started
    assert refused.status_code == 429
    assert refused.json()["Message"] == "not submitted"
    assert "rate limit" in refused.json()["Problem"]
    # 0.1 tokens/s: the next token is ten seconds after the first take, less the time
    # these requests took (however slow this machine is), rounded up.
    assert math.floor(10 - elapsed) <= int(refused.headers["Retry-After"]) <= 10
    # Lookups count against the same bucket: the key is limited, not a route.
    assert api.get("/v1/mail/x", headers=bearer(ALICE_KEY)).status_code == 429
    assert api.post("/v1/mail", json=VALID, headers=bearer(BOB_KEY)).status_code == 200


def test_rate_limit_zero_turns_it_off(tracked_api_factory: ApiFactory) -> None:
    api: TestClient = tracked_api_factory(rate_limit=0, rate_burst=1)
    for _ in range(5):
        assert api.get("/v1/mail/x", headers=bearer(ALICE_KEY)).status_code == 404
