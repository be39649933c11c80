"""The SES provider against a real moto server over HTTP."""

from __future__ import annotations

import asyncio
from typing import Any

import pytest
from botocore.exceptions import ClientError
from botocore.stub import Stubber

from limbo_devtools.local_aws import LocalAws
from limbo_ses_worker.provider import SesProvider, SesSettings, _classify, send_email_request
from limbo_shared.aws import AwsError, as_aws_error
from limbo_shared.provider import (
    PermanentProviderError,
    ProviderUnavailable,
    TransientProviderError,
)
from limbo_shared.schema import MailRequest, QueuedMail

from ..http_client import HTTP


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


def test_the_configuration_set_is_named_when_set() -> None:
    assert "ConfigurationSetName" not in send_email_request(envelope())
    request = send_email_request(envelope(), "limbo-events")
    assert request["ConfigurationSetName"] == "limbo-events"


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
    data = HTTP.get(f"{aws.endpoint}/moto-api/data.json").json()
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


def error(code: str, status: int = 400, message: str = "m") -> AwsError:
    """SES's refusal as call_aws raises it."""
    response: Any = {
        "Error": {"Code": code, "Message": message},
        "ResponseMetadata": {"HTTPStatusCode": status},
    }
    return as_aws_error(ClientError(response, "SendEmail"))


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


@pytest.mark.parametrize(
    ("code", "status", "message", "throttled"),
    [
        ("TooManyRequestsException", 429, "Maximum sending rate exceeded.", True),
        ("Throttling", 400, "Maximum sending rate exceeded.", True),
        ("LimitExceededException", 400, "Daily message quota exceeded.", False),
        ("InternalFailure", 500, "oops", False),
    ],
)
def test_only_a_rate_refusal_lowers_the_shared_rate(
    code: str, status: int, message: str, throttled: bool
) -> None:
    classified = _classify(error(code, status, message))
    assert isinstance(classified, TransientProviderError)
    assert classified.throttled is throttled


def stubbed(configuration_set: str | None = None) -> tuple[SesProvider, Stubber]:
    provider = SesProvider(
        SesSettings(
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


def test_the_send_rate_is_the_accounts_max_send_rate_with_headroom() -> None:
    provider = SesProvider(
        SesSettings(sessource="limbo@example.com", region="us-east-1", ses_rate_headroom=0.5)
    )
    stubber = Stubber(provider._client)
    stubber.activate()
    stubber.add_response("get_account", {"SendQuota": {"MaxSendRate": 14.0}})

    async def go() -> float | None:
        try:
            return await provider.max_send_rate()
        finally:
            await provider.aclose()

    assert asyncio.run(go()) == 7.0
    stubber.assert_no_pending_responses()


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


def test_a_reason_is_limbos_words_the_code_and_the_status_never_aws_text() -> None:
    # AWS's message and botocore's exception text can repeat parts of the request.
    leaky = error("MessageRejected", 400, "Authorization: AWS4-HMAC-SHA256 Credential=AKIA...")
    assert _classify(leaky).reason == "SES MessageRejected (HTTP 400)"  # type: ignore[attr-defined]
    odd = error("Bad Code\r\nX-Evil: 1", 400)
    assert _classify(odd).reason == "SES Unknown (HTTP 400)"  # type: ignore[attr-defined]
