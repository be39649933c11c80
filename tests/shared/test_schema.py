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


def test_the_recipient_count_is_the_count_sent() -> None:
    # One field, one mailbox: a name holding addresses is a name, not more recipients.
    mail = MailRequest.model_validate(
        {**VALID, "to": ['"x1@evil.example, x2@evil.example" <ok@example.com>']}
    )
    assert mail.recipient_count == 1
    assert mail.to == ['"x1@evil.example, x2@evil.example" <ok@example.com>']
    with pytest.raises(ValidationError, match="exactly one mailbox"):
        MailRequest.model_validate(
            {**VALID, "to": ["x1@evil.example, x2@evil.example <ok@example.com>"]}
        )


@pytest.mark.parametrize(
    "name",
    [
        "X-Limbo-Message-Id",
        "x-limbo-anything",
        "X-SES-CONFIGURATION-SET",
        "X-Mailgun-Variables",
        "Return-Path",
        "Sender",
        "Bcc",
        "Resent-To",
        "DKIM-Signature",
        "Received",
        "Content-Disposition",
        "ARC-Seal",
    ],
)
def test_headers_limbo_or_a_provider_gives_meaning_to_are_reserved(name: str) -> None:
    with pytest.raises(ValidationError, match="reserved"):
        MailRequest.model_validate({**VALID, "headers": {name: "x"}})


@pytest.mark.parametrize("name", ["List-Unsubscribe", "List-Unsubscribe-Post", "X-Campaign"])
def test_headers_bulk_senders_need_are_allowed(name: str) -> None:
    assert MailRequest.model_validate({**VALID, "headers": {name: "<https://u.example>"}}).headers


@pytest.mark.parametrize("value", ["", "é", "tab\there", "x" * 996])
def test_header_values_are_what_every_provider_can_send(value: str) -> None:
    with pytest.raises(ValidationError, match=r"printable ASCII|at most 995"):
        MailRequest.model_validate({**VALID, "headers": {"X-A": value}})
    MailRequest.model_validate({**VALID, "headers": {"X-A": "~" * 995}})


@pytest.mark.parametrize(
    "tags",
    [{"limbo_id": "x"}, {"LIMBO_ID": "x"}, {"n" * 65: "v"}, {"k": "v" * 64}, {"k": "a:b"}],
)
def test_tags_are_what_both_providers_accept(tags: dict[str, str]) -> None:
    with pytest.raises(ValidationError):
        MailRequest.model_validate({**VALID, "tags": tags})
    # 64 + ":" + 63 is Mailgun's 128-character o:tag; SES takes up to 256 each.
    MailRequest.model_validate({**VALID, "tags": {"n" * 64: "v" * 63}})


@pytest.mark.parametrize(
    "field,value,problem",
    [
        ("to", ["x"] * 170_000, "to has 170000 items; at most 50"),
        ("cc", [1] * 51, "cc has 51 items"),
        ("headers", {f"X-{i}": "v" for i in range(15)}, "headers has 15 items; at most 14"),
        ("tags", {f"t{i}": "v" for i in range(11)}, "tags has 11 items"),
    ],
)
def test_list_lengths_are_refused_before_any_item_is_validated(
    field: str, value: object, problem: str
) -> None:
    with pytest.raises(ValidationError) as raised:
        MailRequest.model_validate({**VALID, field: value})
    # One problem for the whole list, not one per item.
    assert raised.value.error_count() == 1 and problem in str(raised.value)


def test_unknown_fields_are_one_problem_however_many() -> None:
    with pytest.raises(ValidationError) as raised:
        MailRequest.model_validate({**VALID, **{f"k{i}": 1 for i in range(100_000)}})
    assert raised.value.error_count() == 1 and "99997 more: not known fields" in str(raised.value)
