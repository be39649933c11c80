"""The sink's behaviour comes from one definition, read from and written to SINK_* variables."""

from __future__ import annotations

import json

import httpx
import pytest

from limbo_devtools.mailgun_sink import SinkConfig, create_app
from limbo_shared.config import ConfigError


def test_a_config_written_to_the_environment_reads_back_the_same() -> None:
    config = SinkConfig(api_key="k", fail_500=0.25, slow_seconds=4, record=False, seed=7)
    env = config.to_env()
    assert env["SINK_FAIL_500"] == "0.25"
    assert env["SINK_RECORD"] == "0"
    assert SinkConfig.from_env(env) == config


def test_the_webhook_settings_and_events_domains_read_back_the_same() -> None:
    config = SinkConfig(
        webhook_url="http://127.0.0.1:1/v1/events/mailgun",
        webhook_signing_key="signing",
        events_domains=frozenset({"a.example.com", "b.example.com"}),
    )
    env = config.to_env()
    assert env["SINK_EVENTS_DOMAINS"] == "a.example.com,b.example.com"
    assert SinkConfig.from_env(env) == config
    # Comma-separated as written by hand: blanks dropped, domains lower-cased.
    hand = SinkConfig.from_env({"SINK_EVENTS_DOMAINS": " A.example.com, ,b.example.com"})
    assert hand.events_domains == {"a.example.com", "b.example.com"}


def test_a_malformed_variable_is_named_in_the_error() -> None:
    with pytest.raises(ConfigError, match=r"SINK_FAIL_429 is invalid: .*less than or equal to 1"):
        SinkConfig.from_env({"SINK_FAIL_429": "2"})


async def test_the_configured_failure_share_is_what_the_sink_answers() -> None:
    app = create_app(SinkConfig(api_key=None, fail_500=1.0))
    transport = httpx.ASGITransport(app=app)
    async with httpx.AsyncClient(transport=transport, base_url="http://sink") as client:
        answer = await client.post(
            "/v3/mg.example.com/messages", data={"from": "a@example.com", "to": "b@example.com"}
        )
        counts = (await client.get("/messages", params={"count_only": 1})).json()
    assert answer.status_code == 500
    assert counts == {"count": 0, "failures": {"500": 1}, "lookups": 0}


async def test_the_events_api_lists_what_was_accepted_by_its_user_variables() -> None:
    """The lookup a Mailgun worker makes before a resend: accepted events, by v:limbo_id."""
    app = create_app(SinkConfig(api_key="key"))
    transport = httpx.ASGITransport(app=app)
    async with httpx.AsyncClient(
        transport=transport, base_url="http://sink", auth=("api", "key")
    ) as client:
        sent = []
        for limbo_id in ("one", "two"):
            answer = await client.post(
                "/v3/mg.example.com/messages",
                data={"from": "a@example.com", "to": "b@example.com", "v:limbo_id": limbo_id},
            )
            sent.append(answer.json()["id"])

        async def events(domain: str = "mg.example.com", **query: str) -> list[dict[str, object]]:
            answer = await client.get(f"/v3/{domain}/events", params=query)
            assert answer.status_code == 200, answer.text
            return list(answer.json()["items"])

        found = await events(
            event="accepted", **{"user-variables": json.dumps({"limbo_id": "two"})}
        )
        assert [item["message"] for item in found] == [
            {"headers": {"message-id": sent[1].strip("<>")}}
        ]
        assert found[0]["user-variables"] == {"limbo_id": "two"}
        assert await events(**{"user-variables": json.dumps({"limbo_id": "three"})}) == []
        assert await events(event="delivered") == []
        assert await events(domain="other.example.com") == []
        assert len(await events(limit="1")) == 1
        refused = await client.get("/v3/mg.example.com/events", auth=("api", "wrong"))
        counts = (await client.get("/messages", params={"count_only": 1})).json()
    assert refused.status_code == 401
    assert counts["lookups"] == 5
