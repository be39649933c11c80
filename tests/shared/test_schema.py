"""The message schema decides what a valid email is, on both sides of the queue."""

from __future__ import annotations

import pytest
from pydantic import ValidationError

from limbo_shared.schema import MAX_RECIPIENTS, MailRequest, QueuedMail

VALID = {"from": "a@example.com", "to": ["b@example.com"], "subject": "Hi", "message": "Body"}


def test_minimal_request_is_valid() -> None:
    mail = MailRequest.model_validate(VALID)
    assert mail.from_ == "a@example.com"
    assert mail.cc == [] and mail.bcc == [] and mail.html is None


def test_display_names_are_accepted() -> None:
    mail = MailRequest.model_validate({**VALID, "from": "Ann Example <a@example.com>"})
    assert mail.from_ == "Ann Example <a@example.com>"


def test_unicode_and_idn_addresses_are_accepted() -> None:
    mail = MailRequest.model_validate({**VALID, "to": ["josé@exämple.com"]})
    assert mail.to == ["josé@exämple.com"]


@pytest.mark.parametrize(
    "field,value",
    [
        ("from", "not-an-address"),
        ("from", "a@example.com, b@example.com"),
        ("to", ["a@example.com\r\nBcc: victim@example.com"]),
        ("to", []),
        ("to", "b@example.com"),
        ("cc", ["nobody"]),
        ("subject", "Hello\r\nBcc: x@example.com"),
        ("subject", "Hello\nworld"),
        ("subject", ""),
        ("subject", 42),
        ("message", None),
        ("message", "nul\x00byte"),
        ("headers", {"X-Evil": "a\r\nBcc: x@example.com"}),
        ("headers", {"Bcc": "x@example.com"}),
        ("headers", {"Bad Name": "x"}),
        ("tags", {"a b": "c"}),
        ("unknown", "x"),
    ],
)
def test_invalid_fields_are_refused(field: str, value: object) -> None:
    with pytest.raises(ValidationError) as raised:
        MailRequest.model_validate({**VALID, field: value})
    assert field in str(raised.value) or (field == "unknown" and "unknown" in str(raised.value))


@pytest.mark.parametrize("field", ["from", "to", "subject", "message"])
def test_required_fields(field: str) -> None:
    body = dict(VALID)
    del body[field]
    with pytest.raises(ValidationError, match=field):
        MailRequest.model_validate(body)


def test_recipient_limit_counts_to_cc_and_bcc_together() -> None:
    addresses = [f"r{i}@example.com" for i in range(MAX_RECIPIENTS)]
    MailRequest.model_validate({**VALID, "to": addresses[:30], "cc": addresses[30:]})
    with pytest.raises(ValidationError, match="at most 50"):
        MailRequest.model_validate(
            {**VALID, "to": addresses[:30], "cc": addresses[30:], "bcc": ["x@example.com"]}
        )


def test_envelope_round_trips_through_json() -> None:
    mail = MailRequest.model_validate({**VALID, "cc": ["c@example.com"], "html": "<p>x</p>"})
    envelope = QueuedMail(id="abc", owner="default", submitted_at=1.5, mail=mail)
    again = QueuedMail.from_json(envelope.to_json())
    assert again == envelope
    assert '"from":"a@example.com"' in envelope.to_json()


def test_envelope_with_wrong_schema_is_refused() -> None:
    with pytest.raises(ValidationError):
        QueuedMail.from_json('{"id": "x", "mail": {}}')
    with pytest.raises(ValidationError):
        QueuedMail.from_json("not json")
