"""Webhooks end to end, with real processes: the API registers endpoints, the Mailgun
worker sends (and reports ``sent``), the webhook worker delivers to real receivers.

One system serves the three receivers at once (a healthy one, one failing twice, one
always failing), with short backoff settings; the signatures are checked with the
``standardwebhooks`` library, not with limbo's code.
"""

from __future__ import annotations

import time
import uuid
from collections.abc import Callable, Iterator
from dataclasses import dataclass
from datetime import datetime
from pathlib import Path
from typing import Any

import pytest
from standardwebhooks.webhooks import Webhook

from limbo_devtools.local_aws import provision
from limbo_devtools.processes import Process, free_port, script

from ..conftest import Limbo
from ..http_client import HTTP

pytestmark = pytest.mark.slow

DEADLINE = 60.0


def wait_for(condition: Callable[[], Any], timeout: float = DEADLINE, what: str = "") -> Any:
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        result = condition()
        if result:
            return result
        time.sleep(0.2)
    raise AssertionError(f"timed out waiting for {what}")


@dataclass
class Receiver:
    """One application's endpoint: a path of the shared receiver process."""

    base: str
    path: str
    query: str = ""

    @property
    def url(self) -> str:
        return f"{self.base}{self.path}{self.query}"

    def received(self) -> list[dict[str, Any]]:
        answer = HTTP.get(f"{self.base}/received", params={"path": self.path}, timeout=5)
        deliveries: list[dict[str, Any]] = answer.json()["received"]
        return deliveries


@dataclass
class System:
    api: str
    ok: Receiver
    flaky: Receiver
    dead: Receiver
    endpoints: dict[str, dict[str, Any]]  # by receiver name: the registration answer
    message_id: str
    sent_at: float
    limbo: Limbo


@pytest.fixture(scope="module")
def system(moto_endpoint: str, tmp_path_factory: pytest.TempPathFactory) -> Iterator[System]:
    logs: Path = tmp_path_factory.mktemp("webhooks")
    name = f"w{uuid.uuid4().hex[:12]}"
    aws = provision(moto_endpoint, queue_name=f"{name}.fifo", status_table=f"{name}-status")
    assert aws.webhook_queue_url is not None
    limbo = Limbo(aws, logs)
    extra: list[Process] = []
    try:
        port = free_port()
        extra.append(
            Process(
                "receiver",
                [script("limbo-webhook-receiver")],
                env={"RECEIVER_PORT": str(port)},
                health_url=f"http://127.0.0.1:{port}/health",
                log_path=logs / "receiver.log",
            ).start()
        )
        base = f"http://127.0.0.1:{port}"
        receivers = {
            "ok": Receiver(base, "/hooks/ok"),
            "flaky": Receiver(base, "/hooks/flaky", "?fail_first=2"),
            "dead": Receiver(base, "/hooks/dead", "?fail=1"),
        }
        sink_port = free_port()
        extra.append(
            Process(
                "sink",
                [script("limbo-mailgun-sink")],
                env={"SINK_PORT": str(sink_port), "SINK_API_KEY": "key-test"},
                health_url=f"http://127.0.0.1:{sink_port}/health",
                log_path=logs / "sink.log",
            ).start()
        )
        allow = {"WEBHOOK_ALLOW_HOSTS": "127.0.0.1", "WEBHOOK_ALLOW_HTTP": "true"}
        # Debug logging everywhere: the last test looks for the secrets in every line.
        _, api = limbo.api(LOG_LEVEL="debug", **allow)
        limbo.mailgun_worker(f"http://127.0.0.1:{sink_port}", LOG_LEVEL="debug")
        limbo.start(
            "limbo-webhooks",
            LOG_LEVEL="debug",
            QUEUE=aws.webhook_queue_url,
            # Retries every second or two; an endpoint failing for 15 s is disabled: the
            # flaky endpoint's three attempts fit in that even on a loaded machine.
            WEBHOOK_RETRY_BASE="0.5",
            WEBHOOK_RETRY_MAX="1",
            WEBHOOK_DISABLE_AFTER="15",
            **allow,
        )
        endpoints = {}
        for label, receiver in receivers.items():
            answer = HTTP.post(
                f"{api}/v1/webhooks",
                json={"url": receiver.url, "events": ["sent", "failed"]},
                timeout=10,
            )
            assert answer.status_code == 201, answer.text
            endpoints[label] = answer.json()
        sent_at = time.time()
        submitted = HTTP.post(
            f"{api}/v1/mail",
            json={
                "from": "limbo@example.com",
                "to": ["someone@example.com"],
                "subject": "hooks",
                "message": "hello",
            },
            timeout=10,
        )
        assert submitted.status_code == 200, submitted.text
        yield System(
            api,
            receivers["ok"],
            receivers["flaky"],
            receivers["dead"],
            endpoints,
            submitted.json()["id"],
            sent_at,
            limbo,
        )
    finally:
        limbo.stop()
        for process in extra:
            process.stop()


def _verified(secret: str, delivery: dict[str, Any]) -> Any:
    # The receiver's copy of the body and headers, verified by the reference library.
    return Webhook(secret).verify(delivery["body"], delivery["headers"])


def test_a_registered_endpoint_receives_a_signed_sent_event(system: System) -> None:
    deliveries = wait_for(system.ok.received, what="the sent webhook")
    assert len(deliveries) == 1
    payload = _verified(system.endpoints["ok"]["secret"], deliveries[0])
    assert payload["type"] == "email.sent"
    assert payload["data"]["message_id"] == system.message_id
    assert payload["data"]["status"] == "sent"
    assert payload["data"]["provider"] == "mailgun"
    assert deliveries[0]["path"] == "/hooks/ok"
    assert deliveries[0]["headers"]["webhook-id"].startswith("msg_")
    # Another endpoint's secret does not verify it.
    with pytest.raises(Exception, match="signature"):
        _verified(system.endpoints["flaky"]["secret"], deliveries[0])
    # Status change (the event's own timestamp) to webhook received, and the whole path
    # from the POST of the mail; the receiver and this test share the machine's clock.
    changed = datetime.fromisoformat(payload["timestamp"].replace("Z", "+00:00")).timestamp()
    print(
        f"\nwebhook latency: status change to webhook {(deliveries[0]['at'] - changed) * 1000:.0f}"
        f" ms; POST /v1/mail to webhook {(deliveries[0]['at'] - system.sent_at) * 1000:.0f} ms"
    )


def test_a_failing_receiver_gets_it_on_the_third_attempt(system: System) -> None:
    deliveries = wait_for(
        lambda: len(system.flaky.received()) >= 3 and system.flaky.received(),
        what="three attempts",
    )
    assert [d["answered"] for d in deliveries] == [500, 500, 204]
    # One webhook: the same id on every attempt, each attempt signed afresh.
    assert len({d["headers"]["webhook-id"] for d in deliveries}) == 1
    assert _verified(system.endpoints["flaky"]["secret"], deliveries[2])["type"] == "email.sent"
    time.sleep(2)  # nothing more comes once it was accepted
    assert len(system.flaky.received()) == 3
    shown = HTTP.get(f"{system.api}/v1/webhooks/{system.endpoints['flaky']['id']}", timeout=10)
    assert shown.status_code == 200
    attempts = shown.json()["attempts"]
    assert [a["status_code"] for a in attempts] == [204, 500, 500]  # newest first
    assert [a["outcome"] for a in attempts] == ["ok", "http_error", "http_error"]
    assert all(a["latency_ms"] >= 0 and a["at"].endswith("Z") for a in attempts)
    assert shown.json()["failing_since"] is None
    assert "secret" not in shown.json()


def test_an_endpoint_failing_past_the_window_is_disabled_and_listed_so(system: System) -> None:
    dead_id = system.endpoints["dead"]["id"]

    def listed() -> dict[str, Any] | None:
        endpoints = HTTP.get(f"{system.api}/v1/webhooks", timeout=10).json()["data"]
        entry = next(e for e in endpoints if e["id"] == dead_id)
        return entry if not entry["enabled"] else None

    entry = wait_for(listed, what="the dead endpoint disabled")
    assert entry["disabled_at"].endswith("Z")
    assert entry["disabled_reason"].startswith("every attempt failed for ")
    count = len(system.dead.received())
    assert count >= 2
    time.sleep(3)  # no attempt follows once it is disabled
    assert len(system.dead.received()) == count
    listing = HTTP.get(f"{system.api}/v1/webhooks", timeout=10).json()["data"]
    assert {e["id"]: e["enabled"] for e in listing} == {
        system.endpoints["ok"]["id"]: True,
        system.endpoints["flaky"]["id"]: True,
        dead_id: False,
    }
    assert all("secret" not in e for e in listing)


def test_no_signing_secret_appears_in_any_log_line(system: System) -> None:
    wait_for(lambda: len(system.flaky.received()) >= 3, what="the flaky endpoint's attempts")
    logs = system.limbo.log_text()
    assert "webhook attempt" in logs  # the worker did log its attempts
    for endpoint in system.endpoints.values():
        secret = endpoint["secret"]
        assert secret not in logs
        assert secret.removeprefix("whsec_") not in logs
