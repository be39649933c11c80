"""No head-of-line blocking, with real processes: a retrying message delays only itself,
and a bulk backlog does not delay transactional mail."""

from __future__ import annotations

import time
import uuid
from typing import Any

import boto3

from limbo_devtools.local_aws import LocalAws
from limbo_shared.schema import MailRequest, QueuedMail

from ..conftest import Limbo, sink_messages
from ..http_client import HTTP
from .test_runtime import MAIL, wait_for


def post(api: str, to: str, **extra: Any) -> float:
    """Submit one email to ``to``; answers when it was accepted (epoch seconds)."""
    response = HTTP.post(f"{api}/v1/mail", json={**MAIL, "to": [to], **extra}, timeout=10)
    assert response.status_code == 200, response.text
    return time.time()


def delivered_at(sink: str) -> dict[str, float]:
    """When the sink received each recipient's mail (the first time)."""
    arrivals: dict[str, float] = {}
    for message in sink_messages(sink):
        fields: dict[str, list[str]] = message["fields"]  # type: ignore[assignment]
        arrivals.setdefault(fields["to"][0], float(message["received_at"]))  # type: ignore[arg-type]
    return arrivals


def delivered(sink: str) -> int:
    return int(HTTP.get(f"{sink}/messages?count_only=1", timeout=5).json()["count"])


def failures(sink: str) -> int:
    counts = HTTP.get(f"{sink}/messages?count_only=1", timeout=5).json()["failures"]
    return int(counts.get("recipient", 0))


def test_a_retrying_message_does_not_delay_mail_sent_after_it(
    limbo: Limbo, sink_factory: Any
) -> None:
    sink = sink_factory(SINK_FAIL_RECIPIENT_PREFIX="fail-", SINK_FAIL_RECIPIENT_TIMES="1")
    # One lane: every email of the key shares one FIFO group, the worst case for a retry
    # that waits in place (it would hold all 20 for its 30 s backoff). The bound below is
    # far under 30 s and well over the healthy path's tail on a loaded 2-core machine.
    _, api = limbo.api(GROUP_LANES="1")
    limbo.mailgun_worker(sink, RETRY_BASE_SECONDS="30")
    tag = uuid.uuid4().hex[:8]
    post(api, f"fail-{tag}@example.com")
    wait_for(lambda: failures(sink) == 1)
    accepted = {
        f"ok-{tag}-{i}@example.com": post(api, f"ok-{tag}-{i}@example.com") for i in range(20)
    }
    arrivals = wait_for(lambda: (d := delivered_at(sink)) and set(accepted) <= set(d) and d)
    latencies = sorted(arrivals[to] - at for to, at in accepted.items())
    assert latencies[-1] < 5.0, f"healthy mail waited behind the retry: {latencies}"
    assert f"fail-{tag}@example.com" not in arrivals, "still in its 30 s backoff"
    assert len(sink_messages(sink)) == 20, "each sent once"


def bulk_envelopes(count: int) -> list[dict[str, Any]]:
    entries = []
    for i in range(count):
        mail = QueuedMail(
            id=str(uuid.uuid4()),
            owner="newsletters",
            submitted_at=time.time(),
            stream="bulk",
            mail=MailRequest.model_validate({**MAIL, "to": [f"bulk-{i}@example.com"]}),
        )
        entries.append(
            {
                "Id": str(i % 10),
                "MessageBody": mail.to_json(),
                "MessageGroupId": f"newsletters.{i % 16}",
                "MessageDeduplicationId": mail.id,
            }
        )
    return entries


def test_a_bulk_backlog_does_not_delay_transactional_mail(
    limbo: Limbo, aws: LocalAws, sink_factory: Any
) -> None:
    assert aws.bulk_queue_url is not None
    sqs = boto3.client("sqs", endpoint_url=aws.endpoint, region_name=aws.region)
    entries = bulk_envelopes(200)
    for start in range(0, len(entries), 10):
        sqs.send_message_batch(QueueUrl=aws.bulk_queue_url, Entries=entries[start : start + 10])
    sink = sink_factory(SINK_LATENCY_MS="150")
    _, api = limbo.api()
    # 4 bulk sends at once at 150 ms each: the backlog takes ~7 s to drain.
    limbo.mailgun_worker(sink, BULK_CONCURRENCY="4")
    wait_for(lambda: delivered(sink) >= 20)
    tag = uuid.uuid4().hex[:8]
    accepted = post(api, f"reset-{tag}@example.com")
    arrival = wait_for(lambda: delivered_at(sink).get(f"reset-{tag}@example.com"))
    assert arrival - accepted < 1.5
    assert delivered(sink) < 200, "the bulk backlog was still draining"
