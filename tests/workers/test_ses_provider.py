"""The SES provider against a real moto server over HTTP."""

from __future__ import annotations

import asyncio

import httpx
import pytest
from botocore.exceptions import ClientError
from botocore.stub import Stubber

from limbo_devtools.local_aws import LocalAws
from limbo_ses_worker.provider import SesProvider, SesSettings, _classify, send_email_request
from limbo_shared.provider import (
    PermanentProviderError,
    ProviderUnavailable,
    TransientProviderError,
)
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
    assert request["EmailTags"] == [{"Name": "k", "Value": "v"}]


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


def error(code: str, status: int = 400, message: str = "m") -> ClientError:
    return ClientError(
        {
            "Error": {"Code": code, "Message": message},
            "ResponseMetadata": {"HTTPStatusCode": status},
        },
        "SendEmail",
    )


@pytest.mark.parametrize(
    "code",
    [
        "SendingPausedException",
        "AccountSuspendedException",
        "MailFromDomainNotVerifiedException",
        "NotFoundException",
        "AccessDeniedException",
        "AccessDenied",
        "UnrecognizedClientException",
        "InvalidClientTokenId",
        "ExpiredTokenException",
        "InvalidSignatureException",
        "SignatureDoesNotMatch",
        "RequestExpired",
    ],
)
def test_refusals_of_the_account_are_not_refusals_of_the_message(code: str) -> None:
    classified = _classify(error(code, 403 if code.startswith("Access") else 400))
    assert isinstance(classified, ProviderUnavailable)
    assert code in classified.reason


@pytest.mark.parametrize(
    ("code", "status", "message", "kind"),
    [
        ("MessageRejected", 400, "Email address is not verified.", PermanentProviderError),
        ("BadRequestException", 400, "bad header", PermanentProviderError),
        ("TooManyRequestsException", 429, "Maximum sending rate exceeded.", TransientProviderError),
        ("LimitExceededException", 400, "Daily message quota exceeded.", TransientProviderError),
        ("InternalFailure", 500, "oops", TransientProviderError),
    ],
)
def test_refusals_of_the_message_and_of_the_moment(
    code: str, status: int, message: str, kind: type[Exception]
) -> None:
    assert isinstance(_classify(error(code, status, message)), kind)


def stubbed(configuration_set: str | None = None) -> tuple[SesProvider, Stubber]:
    provider = SesProvider(
        SesSettings(
            sessource="limbo@example.com",
            region="us-east-1",
            ses_configuration_set=configuration_set,
        )
    )
    stubber = Stubber(provider._client)
    stubber.activate()
    return provider, stubber


def probe(provider: SesProvider) -> None:
    async def go() -> None:
        try:
            await provider.probe()
        finally:
            await provider.aclose()

    asyncio.run(go())


def test_the_probe_passes_while_sending_is_enabled() -> None:
    provider, stubber = stubbed("events")
    stubber.add_response("get_account", {"SendingEnabled": True})
    stubber.add_response(
        "get_configuration_set",
        {"ConfigurationSetName": "events"},
        {"ConfigurationSetName": "events"},
    )
    probe(provider)
    stubber.assert_no_pending_responses()


def test_the_probe_fails_while_sending_is_paused() -> None:
    provider, stubber = stubbed()
    stubber.add_response("get_account", {"SendingEnabled": False})
    with pytest.raises(ProviderUnavailable, match="disabled"):
        probe(provider)


def test_the_probe_fails_while_the_configuration_set_is_missing() -> None:
    provider, stubber = stubbed("gone")
    stubber.add_response("get_account", {"SendingEnabled": True})
    stubber.add_client_error("get_configuration_set", "NotFoundException", http_status_code=404)
    with pytest.raises(ProviderUnavailable, match="NotFoundException"):
        probe(provider)


def test_a_paused_account_on_send_is_account_level() -> None:
    provider, stubber = stubbed()
    stubber.add_client_error("send_email", "SendingPausedException", http_status_code=400)

    async def go() -> None:
        try:
            await provider.send(envelope())
        finally:
            await provider.aclose()

    with pytest.raises(ProviderUnavailable, match="SendingPausedException"):
        asyncio.run(go())
