from __future__ import annotations

from concurrent.futures import ThreadPoolExecutor
from dataclasses import replace
from typing import Any

import boto3
import pytest

from limbo_devtools.local_aws import LocalAws
from limbo_shared.queue import (
    MAX_MESSAGE_ATTRIBUTES,
    SQS_MESSAGE_LIMIT,
    OutgoingMessage,
    QueueUnavailable,
    ReceivedMessage,
    SqsQueue,
)
from limbo_shared.worker.dead_letter import MAX_REASON, dead_letter_message, sqs_text


def received(body: str = "b", attributes: dict[str, Any] | None = None) -> ReceivedMessage:
    return ReceivedMessage(
        message_id="mid-1",
        receipt_handle="h",
        body=body,
        attributes={"MessageGroupId": "g"},
        message_attributes=attributes or {},
    )


def text(value: str) -> dict[str, str]:
    return {"DataType": "String", "StringValue": value}


def test_the_letter_carries_the_body_the_reason_and_the_source_id() -> None:
    letter = dead_letter_message(received("hello"), "rejected")
    assert letter.body == "hello"
    assert letter.group_id == "g" and letter.deduplication_id == "mid-1"
    assert letter.attributes["limbo-reason"] == text("rejected")
    assert letter.attributes["limbo-source-message-id"] == text("mid-1")


def test_an_empty_body_is_said_to_be_empty() -> None:
    assert dead_letter_message(received(""), "r").body == "(empty)"


def test_at_most_ten_attributes_are_kept_trace_context_first() -> None:
    carried = {f"a{i}": text("x") for i in range(9)} | {"traceparent": text("00-t")}
    letter = dead_letter_message(received(attributes=carried), "r")
    assert len(letter.attributes) <= MAX_MESSAGE_ATTRIBUTES - 1  # room for limbo-truncated
    assert "traceparent" in letter.attributes
    assert "limbo-reason" in letter.attributes


def test_a_body_at_the_sqs_limit_is_cut_to_fit_beside_the_reason() -> None:
    letter = dead_letter_message(received("x" * SQS_MESSAGE_LIMIT), "r" * MAX_REASON)
    assert letter.size() <= SQS_MESSAGE_LIMIT
    note = letter.attributes["limbo-truncated"]["StringValue"]
    assert note == f"body cut from {SQS_MESSAGE_LIMIT} bytes"
    assert len(letter.attributes) <= MAX_MESSAGE_ATTRIBUTES


def test_a_multibyte_body_is_cut_on_a_character_boundary() -> None:
    letter = dead_letter_message(received("é" * (SQS_MESSAGE_LIMIT // 2)), "r")
    assert letter.size() <= SQS_MESSAGE_LIMIT
    assert set(letter.body) == {"é"}


@pytest.mark.parametrize(
    "reason",
    [
        'unparseable message: {"\x00key": 1}',
        "lone surrogate \ud800 here",
        "bell \x07 and escape \x1b and \ufffe",
    ],
)
def test_the_reason_is_made_of_characters_sqs_accepts(reason: str) -> None:
    cleaned = dead_letter_message(received(), reason).attributes["limbo-reason"]["StringValue"]
    cleaned.encode("utf-8")  # no lone surrogate left
    assert all(
        ch in "\t\n\r"
        or 0x20 <= ord(ch) <= 0xD7FF
        or 0xE000 <= ord(ch) <= 0xFFFD
        or ord(ch) >= 0x10000
        for ch in cleaned
    )
    assert "\ufffd" in cleaned


def test_readable_text_is_kept_as_it_is() -> None:
    assert sqs_text("rejected by ses: MessageRejected — 😀\ttab") == (
        "rejected by ses: MessageRejected — 😀\ttab"
    )


def test_the_reason_is_bounded() -> None:
    assert len(sqs_text("x" * 10_000)) == MAX_REASON
    assert sqs_text("") == "(no reason given)"


def test_outgoing_size_counts_binary_attributes() -> None:
    message = OutgoingMessage(
        body="ab",
        group_id="g",
        deduplication_id="d",
        attributes={"b": {"DataType": "Binary", "BinaryValue": b"123"}},
    )
    assert message.size() == 2 + 1 + len("Binary") + 3


async def test_a_reason_sqs_refuses_is_cleaned_so_the_dead_letter_is_accepted(
    aws: LocalAws,
) -> None:
    # A provider's error text can hold anything JSON can escape, a lone surrogate too
    # (json.loads keeps it); moto answers 500 to such an attribute, real SQS 400.
    reason = 'rejected by mailgun: mailgun answered 400: bad key "\ud800\x00"'
    client = boto3.client("sqs", endpoint_url=aws.endpoint, region_name=aws.region)
    with ThreadPoolExecutor(2) as executor:
        raw = dead_letter_message(received(), "r")
        reason_as_is = {"DataType": "String", "StringValue": reason}
        raw = replace(raw, attributes={**raw.attributes, "limbo-reason": reason_as_is})
        with pytest.raises((QueueUnavailable, UnicodeEncodeError)):
            # What limbo sent before it cleaned reasons (another queue: moto may keep it).
            await SqsQueue(client, aws.queue_url, executor).send(raw)
        dead_letters = SqsQueue(client, aws.dead_letter_url, executor)
        await dead_letters.send(dead_letter_message(received(), reason))
        [letter] = await dead_letters.receive(max_messages=10, wait_seconds=0)
    kept = letter.message_attributes["limbo-reason"]["StringValue"]
    assert kept == 'rejected by mailgun: mailgun answered 400: bad key "\ufffd\ufffd"'
