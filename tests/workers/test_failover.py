"""Routing and failover with real processes: the SES worker (primary, against limbo-moto)
and the Mailgun worker (fallback, against the sink) on one queue, ``ROUTING=ses>mailgun``.

Mail flows at a few per second; the SES account's sending is turned off (as an operator
or AWS would, PutAccountSendingAttributes) and on again. Each limbo id must be sent
exactly once, across the sink and moto's SES, and the switch-over times are printed.
"""

from __future__ import annotations

import threading
import time
import uuid
from collections.abc import Callable, Iterator
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path
from typing import Any

import boto3
import pytest

from limbo_devtools.local_aws import LocalAws, provision
from limbo_shared.schema import MailRequest, QueuedMail

from ..conftest import Limbo, sink_messages
from ..http_client import HTTP

# A region of its own: turning its SES account off touches no other test's sends.
REGION = "eu-west-3"
RATE = 4.0  # messages a second put on the queue
# Short intervals so the whole test stays well under 30 s; the defaults are 5 s and 30 s.
ROUTED = {
    "ROUTING": "ses>mailgun",
    "HEALTH_INTERVAL": "0.5",
    "FAILOVER_HOLD": "3",
    "WAIT_TIME_SECONDS": "1",
}


@pytest.fixture
def routed_limbo(moto_endpoint: str, tmp_path: Path) -> Iterator[Limbo]:
    name = f"t{uuid.uuid4().hex[:12]}"
    aws = provision(
        moto_endpoint,
        region=REGION,
        queue_name=f"{name}.fifo",
        sender="limbo@example.com",
        status_table=f"{name}-status",
    )
    logs = tmp_path / "logs"
    logs.mkdir()
    system = Limbo(aws, logs)
    yield system
    system.stop()
    ses_sending(aws, enabled=True)


def ses_sending(aws: LocalAws, *, enabled: bool) -> None:
    ses = boto3.client("sesv2", endpoint_url=aws.endpoint, region_name=aws.region)
    ses.put_account_sending_attributes(SendingEnabled=enabled)


class Feeder:
    """Puts one message on the queue every 1/RATE s from a thread; remembers when."""

    def __init__(self, aws: LocalAws) -> None:
        self.sqs = boto3.client("sqs", endpoint_url=aws.endpoint, region_name=aws.region)
        self.url = aws.queue_url
        self._queued: dict[str, float] = {}
        self._lock = threading.Lock()
        self._stop = threading.Event()
        self._thread = threading.Thread(target=self._run, daemon=True)

    def __enter__(self) -> Feeder:
        self._thread.start()
        return self

    def __exit__(self, *exc: object) -> None:
        self.stop()

    def stop(self) -> None:
        self._stop.set()
        self._thread.join(10)

    def _run(self) -> None:
        while not self._stop.wait(1 / RATE):
            message_id = str(uuid.uuid4())
            mail = MailRequest.model_validate(
                {
                    "from": "limbo@example.com",
                    "to": ["rcpt@example.com"],
                    "subject": message_id,
                    "message": "failover",
                }
            )
            body = QueuedMail(id=message_id, owner="default", submitted_at=time.time(), mail=mail)
            self.sqs.send_message(
                QueueUrl=self.url,
                MessageBody=body.to_json(),
                MessageGroupId=message_id,
                MessageDeduplicationId=message_id,
            )
            with self._lock:
                self._queued[message_id] = time.time()

    @property
    def queued(self) -> dict[str, float]:
        """Each id put on the queue, and when (a copy: the thread goes on adding)."""
        with self._lock:
            return dict(self._queued)


def ses_sent(aws: LocalAws, ids: set[str]) -> list[str]:
    """The limbo ids (our subjects) moto's SES accepted, once per send."""
    data = HTTP.get(f"{aws.endpoint}/moto-api/data.json", timeout=10).json()
    return [m["subject"] for m in data.get("ses", {}).get("Message", []) if m["subject"] in ids]


def mailgun_sent(sink: str) -> list[tuple[str, float]]:
    """The limbo ids the sink accepted, once per send, with when each arrived."""
    messages: list[dict[str, Any]] = sink_messages(sink)
    return [(m["fields"]["h:X-Limbo-Message-Id"][0], float(m["received_at"])) for m in messages]


def wait_until(predicate: Callable[[], Any], timeout: float, what: str) -> float:
    """Poll until ``predicate`` is true; answer when it became true (time.time())."""
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        if predicate():
            return time.time()
        time.sleep(0.1)
    raise AssertionError(f"{what}: not within {timeout}s")


def active(worker: str, reason: str) -> float | None:
    """The fallback's gauge for ``reason``; None while it has no such series."""
    for line in HTTP.get(f"{worker}/metrics", timeout=5).text.splitlines():
        if line.startswith("limbo_worker_provider_active{") and f'reason="{reason}"' in line:
            return float(line.rsplit(" ", 1)[1])
    return None


@pytest.mark.slow
def test_the_fallback_takes_over_while_ses_is_paused_and_hands_back_once_it_recovers(
    routed_limbo: Limbo, sink: str
) -> None:
    aws = routed_limbo.aws
    began = time.time()
    # Started side by side: on a loaded machine each takes seconds to import and start.
    with ThreadPoolExecutor(2) as pool:
        primary = pool.submit(routed_limbo.ses_worker, **ROUTED)
        _, fallback = pool.submit(routed_limbo.mailgun_worker, sink, **ROUTED).result()
        primary.result()
    print(f"workers up in {time.time() - began:.1f}s")
    with Feeder(aws) as feeder:
        # The primary healthy: it sends, and the fallback takes nothing.
        wait_until(lambda: len(ses_sent(aws, set(feeder.queued))) >= 4, 30, "SES sends")
        assert mailgun_sent(sink) == []
        assert HTTP.get(f"{fallback}/ready").status_code == 200  # standing by is ready

        broken = time.time()
        ses_sending(aws, enabled=False)
        switched = wait_until(lambda: active(fallback, "ses_paused") == 1, 30, "failover")
        first_fallback = wait_until(lambda: mailgun_sent(sink), 30, "a Mailgun send")
        time.sleep(2)  # the fallback carries the traffic a while

        restored = time.time()
        ses_sending(aws, enabled=True)
        sent_before = len(ses_sent(aws, set(feeder.queued)))
        back = wait_until(
            lambda: len(ses_sent(aws, set(feeder.queued))) > sent_before, 30, "SES again"
        )
        standby = wait_until(lambda: active(fallback, "ses_healthy") == 0, 30, "stand-down")
        after_standby = time.time()
        time.sleep(2)
    ids = set(feeder.queued)

    def everything_sent() -> bool:
        return len(ses_sent(aws, ids)) + len(mailgun_sent(sink)) >= len(ids)

    wait_until(everything_sent, 30, "every message sent")
    time.sleep(1)  # a late duplicate would show up now
    via_ses, via_mailgun = ses_sent(aws, ids), mailgun_sent(sink)
    sent = via_ses + [message_id for message_id, _ in via_mailgun]
    print(
        f"messages={len(ids)} ses={len(via_ses)} mailgun={len(via_mailgun)} "
        f"failover: gauge {switched - broken:.1f}s, first Mailgun send "
        f"{first_fallback - broken:.1f}s; failback: first SES send {back - restored:.1f}s, "
        f"fallback standing by {standby - restored:.1f}s after the restore"
    )
    assert sorted(sent) == sorted(ids), "every message sent exactly once"
    assert switched - broken < 30 and first_fallback - broken < 30
    assert via_mailgun, "the fallback sent while SES was paused"
    # Mail queued once the fallback stood down (and its last poll ended) goes to SES.
    late = {i for i, at in feeder.queued.items() if at > after_standby + 1.5}
    assert late and not late & {message_id for message_id, _ in via_mailgun}
    log = routed_limbo.log_text()
    assert log.count('"event": "routing.switched"') == 2
    assert '"reason": "ses_paused"' in log and '"reason": "ses_healthy"' in log
    records = records_of(aws, ids)
    assert {records[i] for i in via_ses} == {"ses"}
    assert {records[i] for i, _ in via_mailgun} == {"mailgun"}


def records_of(aws: LocalAws, ids: set[str]) -> dict[str, str]:
    """Each message's provider in its status record."""
    dynamodb = boto3.client("dynamodb", endpoint_url=aws.endpoint, region_name=aws.region)
    providers = {}
    for message_id in ids:
        item = dynamodb.get_item(
            TableName=str(aws.status_table), Key={"pk": {"S": f"mail#{message_id}"}}
        )["Item"]
        assert item["status"]["S"] == "sent"
        providers[message_id] = item["provider"]["S"]
    return providers
