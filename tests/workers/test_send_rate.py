"""The shared send rate holds for the whole deployment: 1, 3 and 6 real Mailgun worker
processes against one status table and a sink that records when each send arrived."""

from __future__ import annotations

import time
import uuid

import boto3
import pytest

from limbo_devtools.local_aws import LocalAws
from limbo_shared.schema import MailRequest, QueuedMail

from ..conftest import Limbo
from ..http_client import HTTP

# Low enough that even a heavily loaded 2-core machine sends faster than this without the
# limit (one unlimited worker managed ~6/s at a load average of 23).
LIMIT = 5.0
WINDOW = 10.0
MESSAGES = 80  # 16 s of sending at the limit: a full 10 s window and some


def fill_queue(aws: LocalAws, count: int) -> set[str]:
    sqs = boto3.client("sqs", endpoint_url=aws.endpoint, region_name=aws.region)
    ids = [str(uuid.uuid4()) for _ in range(count)]
    mail = MailRequest.model_validate(
        {"from": "limbo@example.com", "to": ["rcpt@example.com"], "subject": "rate", "message": "x"}
    )
    for start in range(0, count, 10):
        entries = [
            {
                "Id": str(n),
                "MessageBody": QueuedMail(
                    id=message_id, owner="default", submitted_at=time.time(), mail=mail
                ).to_json(),
                "MessageGroupId": f"g{n}",
                "MessageDeduplicationId": message_id,
            }
            for n, message_id in enumerate(ids[start : start + 10])
        ]
        sqs.send_message_batch(QueueUrl=aws.queue_url, Entries=entries)  # type: ignore[arg-type]
    return set(ids)


def peak_in_window(arrivals: list[float]) -> int:
    """The most sends any WINDOW-second interval holds (two pointers over sorted times)."""
    arrivals = sorted(arrivals)
    peak, first = 0, 0
    for last, at in enumerate(arrivals):
        while at - arrivals[first] >= WINDOW:
            first += 1
        peak = max(peak, last - first + 1)
    return peak


@pytest.mark.slow
@pytest.mark.parametrize("replicas", [1, 3, 6])
def test_no_ten_second_window_exceeds_the_limit(
    tracked_limbo: Limbo, sink: str, replicas: int
) -> None:
    ids = fill_queue(tracked_limbo.aws, MESSAGES)
    workers: list[str] = []
    for _ in range(replicas):
        _process, url = tracked_limbo.mailgun_worker(sink, MAILGUN_MAX_RATE=str(LIMIT))
        workers.append(url)
    deadline = time.monotonic() + 120
    messages: list[dict[str, object]] = []
    while time.monotonic() < deadline:
        messages = HTTP.get(f"{sink}/messages", timeout=10).json()["messages"]
        if len(messages) >= MESSAGES:
            break
        time.sleep(0.5)
    delivered = [m["fields"]["h:X-Limbo-Message-Id"][0] for m in messages]  # type: ignore[index]
    assert set(delivered) == ids and len(delivered) == MESSAGES
    arrivals = [float(m["received_at"]) for m in messages]  # type: ignore[arg-type]
    peak = peak_in_window(arrivals)
    span = max(arrivals) - min(arrivals)
    print(f"replicas={replicas} peak={peak}/{WINDOW:g}s ({peak / WINDOW:.1f}/s) span={span:.1f}s")
    assert peak <= LIMIT * WINDOW * 1.05
    # And the limit held sends back (they waited for tokens), so it was what bound the rate.
    assert sum(long_waits(url) for url in workers) > 0


def long_waits(worker: str) -> float:
    """Sends that waited more than 0.1 s for a token, from /metrics."""
    text = HTTP.get(f"{worker}/metrics", timeout=10).text
    count = quick = 0.0
    for line in text.splitlines():
        if line.startswith("limbo_worker_rate_limit_wait_seconds_count{"):
            count = float(line.rsplit(" ", 1)[1])
        if line.startswith("limbo_worker_rate_limit_wait_seconds_bucket{") and 'le="0.1"' in line:
            quick = float(line.rsplit(" ", 1)[1])
    return count - quick
