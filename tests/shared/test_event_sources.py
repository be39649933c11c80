"""Event sources in-process: parsing SES records and Mailgun webhooks, and verifying them."""

from __future__ import annotations

import base64
import datetime
import json
from typing import Any

import pytest
from cryptography import x509
from cryptography.hazmat.primitives import hashes, serialization
from cryptography.hazmat.primitives.asymmetric import padding, rsa
from cryptography.x509.oid import NameOID

from limbo_devtools.mailgun_webhooks import webhook
from limbo_devtools.ses_events import ses_records
from limbo_shared.events import (
    BounceType,
    DeliveryOutcome,
    EventRejected,
    MailgunEventSource,
    SesEventSource,
    SnsVerifier,
    verify_mailgun,
)
from limbo_shared.events.sns import signed_text

TOPIC = "arn:aws:sns:us-east-1:123456789012:limbo-ses-events"
CERT_URL = "https://sns.us-east-1.amazonaws.com/SimpleNotificationService-test.pem"
KEY = "webhook-signing-key"


def _records(address: str, limbo_id: str = "id-1") -> list[dict[str, Any]]:
    request = {
        "FromEmailAddress": "limbo@example.com",
        "Destination": {"ToAddresses": [f"Someone <{address}>"]},
        "EmailTags": [{"Name": "limbo_id", "Value": limbo_id}],
    }
    return ses_records(request, "ses-message-id", "limbo-events")


def _envelope(record: dict[str, Any], topic: str = TOPIC) -> dict[str, Any]:
    return {
        "Type": "Notification",
        "MessageId": "sns-1",
        "TopicArn": topic,
        "Message": json.dumps(record),
        "Timestamp": "2026-12-01T10:00:00.000Z",
        "SignatureVersion": "2",
        "Signature": "",
        "SigningCertURL": CERT_URL,
    }


@pytest.fixture(scope="module")
def signer() -> tuple[rsa.RSAPrivateKey, bytes]:
    key = rsa.generate_private_key(public_exponent=65537, key_size=2048)
    name = x509.Name([x509.NameAttribute(NameOID.COMMON_NAME, "sns.amazonaws.com")])
    now = datetime.datetime.now(datetime.UTC)
    certificate = (
        x509.CertificateBuilder()
        .subject_name(name)
        .issuer_name(name)
        .public_key(key.public_key())
        .serial_number(1)
        .not_valid_before(now - datetime.timedelta(days=1))
        .not_valid_after(now + datetime.timedelta(days=1))
        .sign(key, hashes.SHA256())
    )
    return key, certificate.public_bytes(serialization.Encoding.PEM)


def _signed(envelope: dict[str, Any], key: rsa.RSAPrivateKey) -> str:
    signature = key.sign(signed_text(envelope), padding.PKCS1v15(), hashes.SHA256())
    return json.dumps({**envelope, "Signature": base64.b64encode(signature).decode()})


def _unverified() -> SesEventSource:
    return SesEventSource(SnsVerifier(TOPIC, verify_signatures=False))


# -- SES -------------------------------------------------------------------------------


def test_a_hard_bounce_is_a_permanent_bounce_that_suppresses() -> None:
    [record] = _records("bounce@simulator.amazonses.com")
    [event] = _unverified().parse(json.dumps(_envelope(record)))
    assert event.message_id == "id-1"
    assert event.outcome is DeliveryOutcome.BOUNCED
    assert event.bounce_type is BounceType.PERMANENT
    assert event.recipients == ("bounce@simulator.amazonses.com",)
    assert event.diagnostic == "smtp; 550 5.1.1 user unknown"
    assert event.suppresses


def test_a_complaint_comes_after_its_delivery_and_outranks_it() -> None:
    delivery, complaint = (
        _unverified().parse(json.dumps(_envelope(record)))[0]
        for record in _records("complaint@simulator.amazonses.com")
    )
    assert delivery.outcome is DeliveryOutcome.DELIVERED and not delivery.suppresses
    assert complaint.outcome is DeliveryOutcome.COMPLAINED and complaint.suppresses
    assert complaint.precedence > delivery.precedence


def test_transient_and_undetermined_bounces_do_not_suppress() -> None:
    [record] = _records("bounce@simulator.amazonses.com")
    for kind in ("Transient", "Undetermined"):
        record["bounce"]["bounceType"] = kind
        [event] = _unverified().parse(json.dumps(_envelope(record)))
        assert event.bounce_type is BounceType.TRANSIENT and not event.suppresses


def test_events_without_limbos_tag_or_about_opens_are_ignored() -> None:
    [record] = _records("success@simulator.amazonses.com")
    untagged = {**record, "mail": {**record["mail"], "tags": {}}}
    opened = {**record, "eventType": "Open"}
    source = _unverified()
    assert source.parse(json.dumps(_envelope(untagged))) == []
    assert source.parse(json.dumps(_envelope(opened))) == []


def test_a_long_diagnostic_is_bounded_to_one_line() -> None:
    [record] = _records("bounce@simulator.amazonses.com")
    record["bounce"]["bouncedRecipients"][0]["diagnosticCode"] = "550\r\n" + "x" * 5000
    [event] = _unverified().parse(json.dumps(_envelope(record)))
    assert event.diagnostic is not None
    assert len(event.diagnostic) == 500 and "\n" not in event.diagnostic


def test_an_envelope_from_another_topic_is_refused() -> None:
    [record] = _records("bounce@simulator.amazonses.com")
    other = "arn:aws:sns:us-east-1:999999999999:someone-elses-topic"
    with pytest.raises(EventRejected, match="unexpected topic"):
        _unverified().parse(json.dumps(_envelope(record, topic=other)))


def test_a_body_that_is_no_envelope_is_refused() -> None:
    [record] = _records("bounce@simulator.amazonses.com")
    with pytest.raises(EventRejected):
        _unverified().parse(json.dumps(record))  # raw delivery: no TopicArn to check


def test_a_correctly_signed_envelope_verifies(signer: tuple[rsa.RSAPrivateKey, bytes]) -> None:
    key, pem = signer
    fetched: list[str] = []

    def fetch(url: str) -> bytes:
        fetched.append(url)
        return pem

    source = SesEventSource(SnsVerifier(TOPIC, fetch=fetch))
    [record] = _records("bounce@simulator.amazonses.com")
    body = _signed(_envelope(record), key)
    assert source.parse(body)[0].outcome is DeliveryOutcome.BOUNCED
    assert source.parse(body)  # the certificate is fetched once
    assert fetched == [CERT_URL]


def test_a_tampered_envelope_fails_its_signature(signer: tuple[rsa.RSAPrivateKey, bytes]) -> None:
    key, pem = signer
    source = SesEventSource(SnsVerifier(TOPIC, fetch=lambda url: pem))
    [bounce] = _records("bounce@simulator.amazonses.com")
    [delivery] = _records("success@simulator.amazonses.com")
    signed = json.loads(_signed(_envelope(delivery), key))
    signed["Message"] = json.dumps(bounce)  # a delivery's signature on a bounce
    with pytest.raises(EventRejected, match="does not match"):
        source.parse(json.dumps(signed))


def test_a_certificate_from_anywhere_but_sns_is_never_fetched(
    signer: tuple[rsa.RSAPrivateKey, bytes],
) -> None:
    key, pem = signer
    fetched: list[str] = []
    source = SesEventSource(SnsVerifier(TOPIC, fetch=lambda url: fetched.append(url) or pem))
    [record] = _records("bounce@simulator.amazonses.com")
    for url in (
        "https://attacker.example.com/cert.pem",
        "http://sns.us-east-1.amazonaws.com/cert.pem",
        "https://sns.us-east-1.amazonaws.com.attacker.example.com/cert.pem",
    ):
        envelope = {**_envelope(record), "SigningCertURL": url}
        with pytest.raises(EventRejected, match="not an SNS host"):
            source.parse(_signed(envelope, key))
    assert fetched == []


# -- Mailgun ---------------------------------------------------------------------------


def test_a_signed_fresh_webhook_verifies_and_parses() -> None:
    body = json.dumps(
        webhook(KEY, event="failed", severity="permanent", recipient="a@example.com", limbo_id="m")
    )
    signature = verify_mailgun(body, KEY, tolerance=900)
    assert len(signature.token) == 50
    [event] = MailgunEventSource().parse(body)
    assert (event.message_id, event.outcome, event.bounce_type) == (
        "m",
        DeliveryOutcome.BOUNCED,
        BounceType.PERMANENT,
    )
    assert event.diagnostic is not None and event.diagnostic.startswith("550 5.1.1")


def test_a_temporary_failure_ranks_below_the_delivery_that_follows() -> None:
    source = MailgunEventSource()
    [temporary] = source.parse(
        json.dumps(
            webhook(KEY, event="failed", severity="temporary", recipient="a@x.com", limbo_id="m")
        )
    )
    [delivered] = source.parse(
        json.dumps(webhook(KEY, event="delivered", recipient="a@x.com", limbo_id="m"))
    )
    assert temporary.bounce_type is BounceType.TRANSIENT and not temporary.suppresses
    assert temporary.precedence < delivered.precedence


def test_an_unsigned_webhook_is_401() -> None:
    body = webhook(KEY, event="delivered", recipient="a@example.com", limbo_id="m")
    del body["signature"]
    with pytest.raises(EventRejected) as refused:
        verify_mailgun(json.dumps(body), KEY, tolerance=900)
    assert refused.value.status == 401


@pytest.mark.parametrize("wrong", ["another-key", ""])
def test_a_webhook_signed_with_another_key_is_403(wrong: str) -> None:
    body = json.dumps(webhook(wrong, event="delivered", recipient="a@example.com", limbo_id="m"))
    with pytest.raises(EventRejected) as refused:
        verify_mailgun(body, KEY, tolerance=900)
    assert refused.value.status == 403


def test_a_stale_or_future_webhook_is_403() -> None:
    for offset in (-1000, 1000):
        body = json.dumps(
            webhook(KEY, event="delivered", recipient="a@x.com", limbo_id="m", timestamp=1e9)
        )
        with pytest.raises(EventRejected, match="from now") as refused:
            verify_mailgun(body, KEY, tolerance=900, now=lambda offset=offset: 1e9 - offset)
        assert refused.value.status == 403
    verify_mailgun(body, KEY, tolerance=900, now=lambda: 1e9 + 899)


def test_opens_and_webhooks_without_limbos_variable_are_ignored() -> None:
    source = MailgunEventSource()
    opened = webhook(KEY, event="opened", recipient="a@example.com", limbo_id="m")
    foreign = webhook(KEY, event="delivered", recipient="a@example.com", limbo_id=None)
    assert source.parse(json.dumps(opened)) == []
    assert source.parse(json.dumps(foreign)) == []
