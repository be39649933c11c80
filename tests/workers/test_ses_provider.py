"""The SES provider against a real moto server over HTTP."""

from __future__ import annotations

import asyncio

import httpx
import pytest

from limbo_devtools.local_aws import LocalAws
from limbo_ses_worker.provider import SesProvider, SesSettings, send_email_request
from limbo_shared.provider import PermanentProviderError
from limbo_shared.schema import MailRequest, QueuedMail


def envelope(sender: str = "limbo@example.com", **fields: object) -> QueuedMail:
    mail = MailRequest.model_validate(
        {"from": sender, "to": ["b@example.com"], "subject": "S", "message": "T", **fields}
    )
    return QueuedMail(id="m-1", owner="default", submitted_at=0.0, mail=mail)


def test_request_maps_every_field() -> None:
    request = send_email_request(
        envelope(
            cc=["c@example.com"],
            bcc=["d@example.com"],
            html="<p>",
            reply_to=["r@example.com"],
            headers={"X-A": "1"},
            tags={"k": "v"},
        )
    )
    assert request["FromEmailAddress"] == "limbo@example.com"
    assert request["Destination"] == {
        "ToAddresses": ["b@example.com"],
        "CcAddresses": ["c@example.com"],
        "BccAddresses": ["d@example.com"],
    }
    simple = request["Content"]["Simple"]
    assert simple["Body"]["Html"]["Data"] == "<p>"
    assert {"Name": "X-A", "Value": "1"} in simple["Headers"]
    assert request["ReplyToAddresses"] == ["r@example.com"]
    # limbo's id rides along as a tag (the schema reserves the name) for SES events.
    assert request["EmailTags"] == [
        {"Name": "k", "Value": "v"},
        {"Name": "limbo_id", "Value": "m-1"},
    ]


def test_the_from_is_the_clients_own_as_the_api_allowed_it() -> None:
    # The same From whichever worker sends (Mailgun sends it too): no rewriting to a
    # fixed source with the client's address moved to Reply-To.
    request = send_email_request(envelope(sender='"Client, Inc." <client@example.org>'))
    assert request["FromEmailAddress"] == '"Client, Inc." <client@example.org>'
    assert "ReplyToAddresses" not in request


def test_addresses_are_written_from_parsed_parts_in_ascii() -> None:
    request = send_email_request(envelope(sender="José <jose@bücher.example>"))
    assert request["FromEmailAddress"] == "=?utf-8?b?Sm9zw6k=?= <jose@xn--bcher-kva.example>"


def test_client_headers_and_limbos_fit_in_what_ses_takes() -> None:
    headers = {f"X-H{i}": "v" for i in range(14)}
    simple = send_email_request(envelope(headers=headers))["Content"]["Simple"]
    assert len(simple["Headers"]) == 15
    assert simple["Headers"][-1] == {"Name": "X-Limbo-Message-Id", "Value": "m-1"}


def send(aws: LocalAws, mail: QueuedMail, **settings: str) -> str:
    async def go() -> str:
        provider = SesProvider(
            SesSettings(region=aws.region, aws_endpoint_url=aws.endpoint, **settings)  # type: ignore[arg-type]
        )
        try:
            return await provider.send(mail)
        finally:
            await provider.aclose()

    return asyncio.run(go())


def test_sends_through_the_emulator(aws: LocalAws) -> None:
    message_id = send(aws, envelope(subject="via ses"))
    data = httpx.get(f"{aws.endpoint}/moto-api/data.json").json()
    sent = [m for m in data["ses"]["Message"] if m["id"] == message_id]
    assert sent and sent[0]["subject"] == "via ses"


def test_unverified_sender_is_a_permanent_rejection(aws: LocalAws) -> None:
    with pytest.raises(PermanentProviderError, match="MessageRejected"):
        send(aws, envelope(sender="stranger@example.net"))


def test_sender_domains_without_a_verified_identity_are_named(aws: LocalAws) -> None:
    # provision() verifies limbo@example.com's domain, example.com.
    provider = SesProvider(
        SesSettings(
            region=aws.region,
            aws_endpoint_url=aws.endpoint,
            sender_domains="example.com, *.example.com, unverified.example",
        )
    )
    try:
        assert provider.unverified_domains() == ["unverified.example"]
    finally:
        asyncio.run(provider.aclose())
