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
        ),
        "limbo@example.com",
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
    # limbo's id rides as an EmailTag: SES returns it in every event's mail.tags.
    assert request["EmailTags"] == [
        {"Name": "k", "Value": "v"},
        {"Name": "limbo_id", "Value": "m-1"},
    ]


def test_the_configuration_set_is_named_when_set() -> None:
    assert "ConfigurationSetName" not in send_email_request(envelope(), "limbo@example.com")
    request = send_email_request(envelope(), "limbo@example.com", "limbo-events")
    assert request["ConfigurationSetName"] == "limbo-events"


def test_other_from_becomes_reply_to_behind_the_verified_source() -> None:
    request = send_email_request(envelope(sender="client@example.org"), "limbo@example.com")
    assert request["FromEmailAddress"] == "limbo@example.com"
    assert request["ReplyToAddresses"] == ["client@example.org"]


def send(aws: LocalAws, source: str, mail: QueuedMail) -> str:
    async def go() -> str:
        provider = SesProvider(
            SesSettings(sessource=source, region=aws.region, aws_endpoint_url=aws.endpoint)
        )
        try:
            return await provider.send(mail)
        finally:
            await provider.aclose()

    return asyncio.run(go())


def test_sends_through_the_emulator(aws: LocalAws) -> None:
    message_id = send(aws, aws.sender, envelope(subject="via ses"))
    data = httpx.get(f"{aws.endpoint}/moto-api/data.json").json()
    sent = [m for m in data["ses"]["Message"] if m["id"] == message_id]
    assert sent and sent[0]["subject"] == "via ses"


def test_unverified_sender_is_a_permanent_rejection(aws: LocalAws) -> None:
    with pytest.raises(PermanentProviderError, match="MessageRejected"):
        send(aws, "stranger@example.net", envelope(sender="stranger@example.net"))
