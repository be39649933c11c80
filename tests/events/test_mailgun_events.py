"""Mailgun events end to end: the worker sends with v:limbo_id, the sink posts signed
webhooks back to the API's public route, the API queues them, limbo-events applies them."""

from __future__ import annotations

import pytest

from ..conftest import Limbo, sink_messages
from .conftest import WEBHOOK_KEY, outcomes, send, status, suppressed, wait_for

pytestmark = pytest.mark.slow

DOMAIN = "mailgun-simulator.example.com"


def test_mailgun_webhooks_reach_the_status_and_the_suppression_list(
    events_limbo: Limbo, sink_factory: object
) -> None:
    limbo = events_limbo
    _, api = limbo.api(MAILGUN_WEBHOOK_SIGNING_KEY=WEBHOOK_KEY)
    sink = sink_factory(  # type: ignore[operator]
        SINK_WEBHOOK_URL=f"{api}/v1/events/mailgun",
        SINK_WEBHOOK_SIGNING_KEY=WEBHOOK_KEY,
        SINK_EVENTS_DOMAINS=DOMAIN,
    )
    limbo.mailgun_worker(sink)
    limbo.start("limbo-events")

    local_parts = ("bounce", "tempfail", "complaint", "unsubscribe", "success")
    message_id = send(api, *(f"{local}@{DOMAIN}" for local in local_parts)).json()["id"]
    [sent] = wait_for(lambda: sink_messages(sink))
    assert sent["fields"]["v:limbo_id"] == [message_id]

    expected = {
        f"bounce@{DOMAIN}": "bounced",
        # A temporary failure, then the delivery that the retry made: delivered wins.
        f"tempfail@{DOMAIN}": "delivered",
        f"complaint@{DOMAIN}": "complained",
        f"unsubscribe@{DOMAIN}": "unsubscribed",
        f"success@{DOMAIN}": "delivered",
    }

    def arrived() -> bool:
        found = outcomes(api, message_id)
        return {address: entry["outcome"] for address, entry in found.items()} == expected

    wait_for(arrived, what="every recipient's outcome")
    found = outcomes(api, message_id)
    assert found[f"bounce@{DOMAIN}"]["bounce_type"] == "permanent"
    assert found[f"bounce@{DOMAIN}"]["diagnostic"].startswith("550 5.1.1")
    assert all(entry["source"] == "mailgun" for entry in found.values())
    assert status(api, message_id)["status"] == "complained"
    wait_for(
        lambda: (
            suppressed(api) == {f"bounce@{DOMAIN}", f"complaint@{DOMAIN}", f"unsubscribe@{DOMAIN}"}
        ),
        what="the suppression list",
    )
    assert send(api, f"bounce@{DOMAIN}").status_code == 422
