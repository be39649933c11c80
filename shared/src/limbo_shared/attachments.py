"""Attachments: what a client may attach, and the sizes every provider can carry.

Content travels base64-encoded from the client to the worker (JSON has no bytes); it is
decoded only when a provider call is built. The total decoded size has a configurable
limit (the API's ``MAX_ATTACHMENT_BYTES``); the largest allowed setting keeps the
encoded message within the smallest provider cap limbo sends through.
"""

from __future__ import annotations

import binascii
import re
from typing import Annotated, Any

from pydantic import AfterValidator, BaseModel, ConfigDict, Field, StringConstraints

__all__ = [
    "DEFAULT_MAX_ATTACHMENT_BYTES",
    "MAX_ATTACHMENTS",
    "MAX_ATTACHMENT_BYTES_LIMIT",
    "PROVIDER_CAPS",
    "Attachment",
    "AttachmentsTooLarge",
    "check_attachment_size",
    "decoded_size",
    "encoded_size",
]

MAX_ATTACHMENTS = 20
DEFAULT_MAX_ATTACHMENT_BYTES = 10_000_000
# What each provider accepts for one message, counted after base64 (SES v2: 40 MB;
# Mailgun: 25 MB). The API refuses beyond the smallest, so any worker can send anything.
PROVIDER_CAPS = {"ses": 40_000_000, "mailgun": 25_000_000}
# Room left under the smallest cap for bodies, headers and MIME/form framing.
_FRAMING_ROOM = 1_000_000
MAX_ATTACHMENT_BYTES_LIMIT = (min(PROVIDER_CAPS.values()) - _FRAMING_ROOM) * 3 // 4

# A file name as providers take it: no control characters (header injection), no path.
_FILENAME = re.compile(r"^[^\x00-\x1f\x7f/\\]{1,255}$")
# RFC 6838 type/subtype names without parameters; SES takes at most 78 characters.
_CONTENT_TYPE = re.compile(
    r"^[A-Za-z0-9][A-Za-z0-9!#$&^_.+-]{0,62}/[A-Za-z0-9][A-Za-z0-9!#$&^_.+-]{0,62}$"
)
# The id an HTML body refers to as `cid:<id>`: RFC 5322 dot-atom text and `@`, no brackets.
_CONTENT_ID = re.compile(r"^[A-Za-z0-9!#$%&'*+/=?^_`{|}~.@-]{1,78}$")
# Canonical base64, as JSON Schema can state it; the validator below decides.
_BASE64_PATTERN = r"^(?:[A-Za-z0-9+/]{4})*(?:[A-Za-z0-9+/]{2}==|[A-Za-z0-9+/]{3}=)?$"


def _matching(pattern: re.Pattern[str], what: str) -> AfterValidator:
    def check(value: str) -> str:
        if not pattern.match(value):
            raise ValueError(f"is not a valid {what}")
        return value

    return AfterValidator(check)


def _base64(value: str) -> str:
    try:
        binascii.a2b_base64(value.encode("ascii"), strict_mode=True)
    except (binascii.Error, UnicodeEncodeError):
        raise ValueError("must be base64 (RFC 4648, with padding, no line breaks)") from None
    return value


def _document(schema: dict[str, Any]) -> None:
    properties = schema["properties"]
    properties["filename"]["pattern"] = r"^[^\u0000-\u001f\u007f/\\]+$"
    properties["content_type"]["pattern"] = _CONTENT_TYPE.pattern
    properties["content"]["pattern"] = _BASE64_PATTERN
    properties["content_id"]["anyOf"][0]["pattern"] = _CONTENT_ID.pattern


class Attachment(BaseModel):
    """One file; with ``content_id`` it is inline (an HTML body shows it as ``cid:<id>``)."""

    model_config = ConfigDict(extra="forbid", strict=True, frozen=True, json_schema_extra=_document)

    filename: Annotated[
        str,
        StringConstraints(strict=True, min_length=1, max_length=255),
        _matching(_FILENAME, "file name (no control characters, no / or \\)"),
    ]
    content: Annotated[str, StringConstraints(strict=True), AfterValidator(_base64)] = Field(
        description="The file's bytes, base64-encoded"
    )
    content_type: Annotated[
        str,
        StringConstraints(strict=True, min_length=3, max_length=78),
        _matching(_CONTENT_TYPE, "media type such as application/pdf (no parameters)"),
    ]
    content_id: (
        Annotated[
            str,
            StringConstraints(strict=True, min_length=1, max_length=78),
            _matching(_CONTENT_ID, "content id (letters, digits, . @ - _ ..., no < >)"),
        ]
        | None
    ) = Field(default=None, description="Makes the attachment inline, shown as cid:<id>")

    @property
    def decoded_size(self) -> int:
        return decoded_size(self.content)

    def data(self) -> bytes:
        return binascii.a2b_base64(self.content.encode("ascii"), strict_mode=True)


def decoded_size(content: str) -> int:
    """Bytes a valid base64 text decodes to, without decoding it."""
    return len(content) * 3 // 4 - content[-2:].count("=")


def encoded_size(attachments: list[Attachment]) -> int:
    """Bytes the attachments take base64-encoded (what the providers' caps count)."""
    return sum(len(attachment.content) for attachment in attachments)


class AttachmentsTooLarge(ValueError):
    pass


def check_attachment_size(attachments: list[Attachment], limit: int) -> None:
    """Raise AttachmentsTooLarge when the decoded total is over ``limit`` bytes."""
    total = sum(attachment.decoded_size for attachment in attachments)
    if total > limit:
        raise AttachmentsTooLarge(
            f"{total} bytes decoded in total; at most {limit} (MAX_ATTACHMENT_BYTES)"
        )
