"""Delivery events reach client webhooks end to end: a send to SES's bounce simulator
bounces through SNS and the events queue, limbo-events applies it and tells the webhook
queue, the webhook worker delivers a signed ``email.bounced`` to a registered receiver."""

from __future__ import annotations

from datetime import datetime
from typing import Any

import pytest
from standardwebhooks.webhooks import Webhook

from ..conftest import Limbo
from ..http_client import HTTP
from .conftest import outcomes, send, wait_for

pytestmark = pytest.mark.slow

BOUNCE = "bounce@simulator.amazonses.com"
SUCCESS = "success@simulator.amazonses.com"


def test_a_bounce_reaches_a_registered_endpoint_signed(events_limbo: Limbo) -> None:
    limbo = events_limbo
    assert limbo.aws.webhook_queue_url is not None
    allow = {"WEBHOOK_ALLOW_HOSTS": "127.0.0.1", "WEBHOOK_ALLOW_HTTP": "true"}
    _, api = limbo.api(**allow)
    limbo.ses_worker()
    limbo.start("limbo-events")
    limbo.start("webhooks", WEBHOOK_RETRY_BASE="0.5", WEBHOOK_RETRY_MAX="1", **allow)
    _, receiver = limbo.start("webhook-receiver")
    endpoint = HTTP.post(
        f"{api}/v1/webhooks",
        json={"url": f"{receiver}/hooks/bounces", "events": ["bounced"]},
        timeout=10,
    ).json()

    answer = send(api, BOUNCE, SUCCESS)
    assert answer.status_code == 200, answer.text

    def received() -> list[dict[str, Any]]:
        found = HTTP.get(f"{receiver}/received", params={"path": "/hooks/bounces"}, timeout=5)
        deliveries: list[dict[str, Any]] = found.json()["received"]
        return deliveries

    [delivery] = wait_for(received, what="the bounced webhook")
    payload = Webhook(endpoint["secret"]).verify(delivery["body"], delivery["headers"])
    assert payload["type"] == "email.bounced"
    assert payload["data"] == {
        "message_id": answer.json()["id"],
        "status": "bounced",
        "recipient": BOUNCE,
        "provider": "ses",
        "detail": "smtp; 550 5.1.1 user unknown",
    }
    # SUCCESS's delivery was applied too, and is not what this endpoint asked for.
    wait_for(lambda: len(outcomes(api, answer.json()["id"])) == 2, what="both outcomes")
    bounced_at = datetime.fromisoformat(payload["timestamp"].replace("Z", "+00:00")).timestamp()
    print(f"\nbounce (SES event time) to webhook received: {delivery['at'] - bounced_at:.2f} s")
    assert len(received()) == 1
