"""The queue goes away for 10-20 s behind a proxy that refuses or stalls connections.

The API and two Mailgun workers reach moto only through the proxy (AWS_ENDPOINT_URL);
the test watches them from outside: answers and their timing, CPU time, metrics, and
finally what the sink received.
"""

from __future__ import annotations

import time
from collections.abc import Iterator
from concurrent.futures import ThreadPoolExecutor
from typing import Any
from urllib.parse import urlsplit

import httpx
import pytest

from limbo_api.publisher import IN_FLIGHT_GRACE
from limbo_devtools.local_aws import LocalAws
from limbo_devtools.tcp_proxy import FaultyProxy

from ..conftest import Limbo
from ..http_client import HTTP
from .helpers import MAIL, cpu_seconds, deliveries, metric, put_envelope, queue_depth, wait_for

pytestmark = pytest.mark.slow

OUTAGE_SECONDS = 10.0
PUBLISH_TIMEOUT = 3.0
# The API answers within PUBLISH_TIMEOUT, or, for a batch already sent when the queue
# went silent, within the SQS client's timeout (IN_FLIGHT_GRACE past the deadline).
ANSWER_BOUND = PUBLISH_TIMEOUT + IN_FLIGHT_GRACE + 1.5
READY_BOUND = 2.5


@pytest.fixture
def proxy(moto_endpoint: str) -> Iterator[FaultyProxy]:
    upstream = urlsplit(moto_endpoint)
    with FaultyProxy(upstream.hostname or "127.0.0.1", upstream.port or 80) as running:
        yield running


def timed_post(api: str, subject: str) -> tuple[int, float, dict[str, Any], httpx.Headers]:
    started = time.monotonic()
    response = HTTP.post(f"{api}/v1/mail", json={**MAIL, "subject": subject}, timeout=60)
    return response.status_code, time.monotonic() - started, response.json(), response.headers


@pytest.mark.parametrize("mode", ["refuse", "stall"])
def test_queue_outage_gives_bounded_503s_and_nothing_is_lost(
    mode: str, limbo: Limbo, aws: LocalAws, sink: str, proxy: FaultyProxy
) -> None:
    env = {
        "AWS_ENDPOINT_URL": proxy.url,
        "PUBLISH_TIMEOUT": str(PUBLISH_TIMEOUT),
        "CONCURRENCY": "20",
        "RETRY_BASE_SECONDS": "1",
    }
    _, api = limbo.api(**env)
    workers = [limbo.mailgun_worker(sink, **env) for _ in range(2)]
    expected: set[str] = set()

    for i in range(5):
        status, _, body, _ = timed_post(api, f"before {i}")
        assert status == 200
        expected.add(body["id"])
    wait_for(lambda: set(deliveries(sink)) == expected, what="delivery before the outage")
    wait_for(lambda: queue_depth(aws) == 0, what="an empty queue before the outage")

    cpu_before = {process.pid: cpu_seconds(process.pid) for process, _ in workers}
    errors_before = {url: metric(url, "limbo_worker_queue_errors_total") for _, url in workers}
    getattr(proxy, mode)()
    outage_started = time.monotonic()

    # The API: every request answers 503 in the documented shape, in bounded time,
    # also when several wait at once for the same dead queue.
    with ThreadPoolExecutor(8) as pool:
        answers = list(pool.map(lambda i: timed_post(api, f"during {i}"), range(8)))
    for status, seconds, body, headers in answers:
        assert status == 503, body
        assert seconds < ANSWER_BOUND, f"answered after {seconds:.1f}s"
        assert set(body) == {"Message", "Problem"} and body["Message"] == "not submitted"
        assert headers["Retry-After"].isdigit()
    started = time.monotonic()
    ready = HTTP.get(f"{api}/ready", timeout=30)
    assert ready.status_code == 503 and ready.json()["ready"] is False
    assert time.monotonic() - started < READY_BOUND, "/ready hung on the dead queue"
    assert HTTP.get(f"{api}/health").status_code == 200

    # Mail accepted before the outage but still queued must go out once it is over.
    waiting = {put_envelope(aws, f"queued {i}") for i in range(3)}
    expected |= waiting

    time.sleep(max(0.0, outage_started + OUTAGE_SECONDS - time.monotonic()))
    outage = time.monotonic() - outage_started
    for process, url in workers:
        assert process.popen is not None and process.popen.poll() is None, "a worker died"
        assert HTTP.get(f"{url}/health").status_code == 200
        # Backing off, not spinning: an idle worker uses ~1% of a core; a busy loop 100%.
        used = cpu_seconds(process.pid) - cpu_before[process.pid]
        assert used < 0.25 * outage, f"worker used {used:.1f}s of CPU in {outage:.0f}s"
        failed_calls = metric(url, "limbo_worker_queue_errors_total") - errors_before[url]
        assert failed_calls < 5 * outage, f"{failed_calls:.0f} failed SQS calls in {outage:.0f}s"

    proxy.restore()
    restored = time.monotonic()

    # The API recovers by itself, and readiness follows within its cache window.
    def accepted_again() -> str | None:
        status, _, body, _ = timed_post(api, "after 0")
        return str(body["id"]) if status == 200 else None

    expected.add(wait_for(accepted_again, timeout=20, what="a 200 after the outage"))
    wait_for(
        lambda: HTTP.get(f"{api}/ready", timeout=10).status_code == 200,
        timeout=10,
        what="ready after the outage",
    )
    for i in range(1, 5):
        status, _, body, _ = timed_post(api, f"after {i}")
        assert status == 200
        expected.add(body["id"])

    # Everything accepted is delivered once; nothing answered 503 was sent after all.
    wait_for(
        lambda: set(deliveries(sink)) >= expected,
        timeout=60,
        what="delivery of everything accepted",
    )
    print(f"{mode}: resumed {time.monotonic() - restored:.1f}s after the outage ended")
    time.sleep(1.0)
    delivered = deliveries(sink)
    assert set(delivered) == expected, "a 503 was published after all"
    assert all(count == 1 for count in delivered.values()), delivered.most_common(3)
