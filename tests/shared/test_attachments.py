"""What a client may attach: names, types, base64, and the size limits."""

from __future__ import annotations

import base64
from typing import Any

import pytest
from pydantic import ValidationError

from limbo_shared.attachments import (
    MAX_ATTACHMENT_BYTES_LIMIT,
    PROVIDER_CAPS,
    Attachment,
    AttachmentsTooLarge,
    check_attachment_size,
    decoded_size,
)
from limbo_shared.schema import MailRequest

GOOD: dict[str, Any] = {
    "filename": "report.pdf",
    "content": base64.b64encode(b"%PDF-1.7 ...").decode(),
    "content_type": "application/pdf",
}


def test_an_attachment_carries_its_decoded_bytes() -> None:
    attachment = Attachment.model_validate(GOOD)
    assert attachment.data() == b"%PDF-1.7 ..."
    assert attachment.content_id is None


@pytest.mark.parametrize("data", [b"", b"a", b"ab", b"abc", bytes(range(256)) * 3])
def test_decoded_size_is_known_without_decoding(data: bytes) -> None:
    assert decoded_size(base64.b64encode(data).decode()) == len(data)


@pytest.mark.parametrize(
    "field,value",
    [
        ("filename", "../../etc/passwd"),
        ("filename", "a\\b.txt"),
        ("filename", "evil\r\nContent-Type: text/html"),
        ("filename", ""),
        ("filename", "x" * 256),
        ("content", "not base64!"),
        ("content", "QQ="),  # wrong padding
        ("content", "QUJD\nREVG"),  # line breaks
        ("content_type", "text/plain; charset=utf-8"),
        ("content_type", "text"),
        ("content_type", "text/plain\r\nX: y"),
        ("content_id", "<logo@x>"),
        ("content_id", "a b"),
    ],
)
def test_bad_names_types_and_content_are_refused(field: str, value: str) -> None:
    with pytest.raises(ValidationError) as error:
        Attachment.model_validate({**GOOD, field: value})
    assert error.value.errors()[0]["loc"][0] == field


def test_the_decoded_total_is_limited() -> None:
    attachments = [Attachment.model_validate(GOOD)] * 3
    total = 3 * len(b"%PDF-1.7 ...")
    check_attachment_size(attachments, total)
    with pytest.raises(AttachmentsTooLarge, match=f"{total} bytes decoded in total"):
        check_attachment_size(attachments, total - 1)


def test_the_largest_allowed_limit_fits_every_provider_after_base64() -> None:
    encoded = -(-MAX_ATTACHMENT_BYTES_LIMIT // 3) * 4
    assert encoded < min(PROVIDER_CAPS.values())


def test_a_mail_takes_attachments_and_inline_images() -> None:
    mail = MailRequest.model_validate(
        {
            "from": "a@example.com",
            "to": ["b@example.com"],
            "subject": "s",
            "message": "m",
            "attachments": [GOOD, {**GOOD, "content_type": "image/png", "content_id": "logo@x"}],
        }
    )
    assert [a.content_id for a in mail.attachments] == [None, "logo@x"]
