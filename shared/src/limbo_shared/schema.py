"""The message schema: what a client submits and what travels on the queue.

The API validates with these models and the workers validate again on receipt, so
one definition decides what a valid email is on both sides of the queue.
"""

from __future__ import annotations

import re
from typing import Annotated, Any, Literal

from email_validator import SPECIAL_USE_DOMAIN_NAMES
from pydantic import (
    AfterValidator,
    BaseModel,
    ConfigDict,
    Field,
    StringConstraints,
    model_validator,
)

from .addresses import parse_mailbox
from .attachments import MAX_ATTACHMENTS, Attachment
from .scheduling import ScheduledAt, parse_rfc3339

__all__ = [
    "ENVELOPE_VERSION",
    "LIMBO_ID_TAG",
    "MAX_RECIPIENTS",
    "STREAMS",
    "Address",
    "MailRequest",
    "QueuedMail",
    "Stream",
    "address_json_schema",
]

# SES refuses a message with more than 50 recipients across To, Cc and Bcc.
MAX_RECIPIENTS = 50
# SES accepts at most 15 custom headers on a Simple message; limbo adds one of its own.
MAX_HEADERS = 14
# Mailgun takes at most 10 `o:tag` per message (its official clients cap it there).
MAX_TAGS = 10
MAX_REPLY_TO = 10
# SES: a header value is printable ASCII, 1 to 995 characters.
MAX_HEADER_VALUE = 995
# Tags go to SES as EmailTags (name and value `[A-Za-z0-9_-]`, ≤ 256 each) and to Mailgun
# as one `o:tag` `name:value` (≤ 128 characters): 64 + 1 + 63 fits both.
MAX_TAG_NAME = 64
MAX_TAG_VALUE = 63
# The tag (SES EmailTag) and variable (Mailgun `v:`) that carry limbo's message id.
LIMBO_ID_TAG = "limbo_id"
ENVELOPE_VERSION = 1

# Each stream has its own queue; workers serve `transactional` first (see README).
Stream = Literal["transactional", "bulk"]
STREAMS: tuple[Stream, ...] = ("transactional", "bulk")

_LINE_BREAKS = re.compile(r"[\r\n\x00]")
# RFC 5322 field names: printable ASCII except colon and space.
_HEADER_NAME = re.compile(r"^[!-9;-~]{1,76}$")
_HEADER_VALUE = re.compile(rf"^[ -~]{{1,{MAX_HEADER_VALUE}}}$")
# Headers limbo or the provider sets itself, or that change where mail goes or what
# vouches for it; letting a client set them would let it rewrite the envelope behind
# the validation above. List-Unsubscribe(-Post) and Feedback-ID stay allowed: bulk
# senders need them (Gmail's and Yahoo's sender rules) and they route nothing.
_RESERVED_HEADERS = frozenset(
    {
        "from",
        "to",
        "cc",
        "bcc",
        "subject",
        "reply-to",
        "sender",
        "return-path",
        "mime-version",
        "date",
        "message-id",
        "dkim-signature",
        "domainkey-signature",
        "received",
        "delivered-to",
        "errors-to",
        "return-receipt-to",
        "disposition-notification-to",
        "authentication-results",
    }
)
# Whole families: limbo's correlation header, the providers' control headers, resent
# blocks (a second envelope), MIME structure, and ARC seals.
_RESERVED_PREFIXES = ("x-limbo-", "x-ses-", "x-mailgun-", "resent-", "content-", "arc-")
# Lists whose length is checked before any item is: a 1 MiB body can hold 170,000 items.
_LIST_LIMITS = {
    "to": MAX_RECIPIENTS,
    "cc": MAX_RECIPIENTS,
    "bcc": MAX_RECIPIENTS,
    "reply_to": MAX_REPLY_TO,
    "headers": MAX_HEADERS,
    "tags": MAX_TAGS,
}


def _no_line_breaks(value: str) -> str:
    if _LINE_BREAKS.search(value):
        raise ValueError("must not contain CR, LF or NUL (header injection)")
    return value


def _no_nul(value: str) -> str:
    if "\x00" in value:
        raise ValueError("must not contain NUL characters")
    return value


def _mailbox(value: str) -> str:
    # What travels on is limbo's writing of the parsed mailbox, not the client's text.
    return parse_mailbox(value).formatted


def is_reserved_header(name: str) -> bool:
    lowered = name.lower()
    return lowered in _RESERVED_HEADERS or lowered.startswith(_RESERVED_PREFIXES)


def _header_name(value: str) -> str:
    if not _HEADER_NAME.match(value):
        raise ValueError(f"header name {value!r} is not a valid RFC 5322 field name")
    if is_reserved_header(value):
        raise ValueError(f"header {value!r} is reserved (set by limbo or a provider, or routing)")
    return value


def _header_value(value: str) -> str:
    if not _HEADER_VALUE.match(value):
        _no_line_breaks(value)
        raise ValueError(
            f"header values must be 1-{MAX_HEADER_VALUE} printable ASCII characters "
            "(what every provider can send)"
        )
    return value


def _tag_name(value: str) -> str:
    if value.lower() == LIMBO_ID_TAG:
        raise ValueError(f"tag name {LIMBO_ID_TAG!r} is reserved for limbo's message id")
    return value


Address = Annotated[
    str,
    StringConstraints(strict=True, min_length=3, max_length=320),
    AfterValidator(_mailbox),
]
HeaderText = Annotated[
    str, StringConstraints(strict=True, max_length=998), AfterValidator(_no_line_breaks)
]
HeaderValue = Annotated[
    str, StringConstraints(strict=True, max_length=MAX_HEADER_VALUE), AfterValidator(_header_value)
]
BodyText = Annotated[str, StringConstraints(strict=True), AfterValidator(_no_nul)]
HeaderName = Annotated[str, StringConstraints(strict=True), AfterValidator(_header_name)]
_TAG_CHARS = r"^[A-Za-z0-9_-]+$"
TagName = Annotated[
    str,
    StringConstraints(strict=True, min_length=1, max_length=MAX_TAG_NAME, pattern=_TAG_CHARS),
    AfterValidator(_tag_name),
]
TagValue = Annotated[
    str, StringConstraints(strict=True, min_length=1, max_length=MAX_TAG_VALUE, pattern=_TAG_CHARS)
]


def _case_insensitive(text: str) -> str:
    return "".join(f"[{c.upper()}{c}]" if c.isalpha() else re.escape(c) for c in text)


# JSON Schema (ECMA-262) patterns for what the validators above enforce.
_NO_BREAKS_PATTERN = r"^[^\r\n\u0000]*$"
_NO_NUL_PATTERN = r"^[^\u0000]*$"
# Reserved names and prefixes in any letter case.
_RESERVED_PATTERN = (
    "^(?:"
    + "|".join(_case_insensitive(name) for name in sorted(_RESERVED_HEADERS))
    + ")$|^(?:"
    + "|".join(_case_insensitive(prefix) for prefix in _RESERVED_PREFIXES)
    + ")"
)
# email_validator refuses special-use domains (RFC 6761: test, invalid, localhost...).
_SPECIAL_USE_PATTERN = (
    "@(?:[^@]*\\.)?(?:"
    + "|".join(_case_insensitive(name) for name in SPECIAL_USE_DOMAIN_NAMES)
    + ")\\.?>?$"
)


def address_json_schema() -> dict[str, Any]:
    """The JSON schema of an :data:`Address`, for every document that takes one."""
    # Stated as an email address; `Name <addr>` (see the descriptions) is accepted too.
    return {
        "type": "string",
        "format": "email",
        "minLength": 3,
        "maxLength": 254,
        "not": {"pattern": _SPECIAL_USE_PATTERN},
    }


def _document_constraints(schema: dict[str, Any]) -> None:
    """Put into the JSON schema what the validators enforce beyond types and lengths.

    /openapi.json is generated from this schema; clients and generated tests
    (schemathesis) then see the rules the API applies, not a looser version of them.
    """
    properties = schema["properties"]
    address = address_json_schema
    properties["from"].update(address())
    for name in ("to", "cc", "bcc", "reply_to"):
        properties[name]["items"] = address()
    for name, limit in _LIST_LIMITS.items():
        # Each list alone; to, cc and bcc together are limited to the same number.
        key = "maxItems" if name not in ("headers", "tags") else "maxProperties"
        properties[name][key] = limit
    properties["subject"]["pattern"] = _NO_BREAKS_PATTERN
    properties["message"]["pattern"] = _NO_NUL_PATTERN
    properties["html"]["anyOf"][0]["pattern"] = _NO_NUL_PATTERN
    properties["headers"]["propertyNames"] = {
        "pattern": _HEADER_NAME.pattern,
        "not": {"pattern": _RESERVED_PATTERN},
    }
    properties["headers"]["additionalProperties"] = {
        "type": "string",
        "minLength": 1,
        "maxLength": MAX_HEADER_VALUE,
        "pattern": _HEADER_VALUE.pattern,
    }
    properties["tags"].pop("patternProperties", None)
    properties["tags"]["propertyNames"] = {
        "type": "string",
        "minLength": 1,
        "maxLength": MAX_TAG_NAME,
        "pattern": _TAG_CHARS,
        "not": {"pattern": f"^{_case_insensitive(LIMBO_ID_TAG)}$"},
    }
    properties["tags"]["additionalProperties"] = {
        "type": "string",
        "minLength": 1,
        "maxLength": MAX_TAG_VALUE,
        "pattern": _TAG_CHARS,
    }
    properties["scheduled_at"]["anyOf"][0]["format"] = "date-time"


class MailRequest(BaseModel):
    """An email as a client submits it to ``POST /v1/mail``."""

    model_config = ConfigDict(
        extra="forbid",
        strict=True,
        populate_by_name=True,
        frozen=True,
        json_schema_extra=_document_constraints,
    )

    from_: Address = Field(alias="from", description="Sender, `addr` or `Name <addr>`")
    to: list[Address] = Field(
        min_length=1,
        max_length=MAX_RECIPIENTS,
        description=f"Recipients (`addr` or `Name <addr>`), at least one; at most "
        f"{MAX_RECIPIENTS} across to, cc and bcc",
    )
    cc: list[Address] = Field(default_factory=list, max_length=MAX_RECIPIENTS)
    bcc: list[Address] = Field(default_factory=list, max_length=MAX_RECIPIENTS)
    subject: HeaderText = Field(min_length=1)
    message: BodyText = Field(description="Plain-text body")
    html: BodyText | None = Field(default=None, description="Optional HTML body")
    reply_to: list[Address] = Field(default_factory=list, max_length=MAX_REPLY_TO)
    headers: dict[HeaderName, HeaderValue] = Field(
        default_factory=dict,
        max_length=MAX_HEADERS,
        description="Custom headers: printable ASCII values of 1-995 characters; From, To, "
        "Sender, Return-Path, Bcc, Received, DKIM-Signature and the like, and the families "
        "X-Limbo-*, X-SES-*, X-Mailgun-*, Resent-*, Content-*, ARC-* are reserved",
    )
    tags: dict[TagName, TagValue] = Field(
        default_factory=dict,
        max_length=MAX_TAGS,
        description=f"Name/value tags for reporting, `[A-Za-z0-9_-]`, names up to "
        f"{MAX_TAG_NAME} and values up to {MAX_TAG_VALUE} characters; `{LIMBO_ID_TAG}` is "
        "reserved",
    )
    stream: Stream | None = Field(
        default=None,
        description="`transactional` or `bulk` (each has its own queue; transactional is "
        "served first); unset means the API key's default (see BULK_KEYS)",
    )
    attachments: list[Attachment] = Field(
        default_factory=list,
        max_length=MAX_ATTACHMENTS,
        description="Files; with content_id inline (cid:<id>); total size limited by "
        "MAX_ATTACHMENT_BYTES",
    )
    scheduled_at: ScheduledAt | None = Field(
        default=None,
        description="RFC 3339 time to send at, up to MAX_SCHEDULE_HOURS ahead; a past "
        "time sends now",
    )

    @model_validator(mode="before")
    @classmethod
    def _bounded(cls, data: Any) -> Any:
        # Before any item is validated: the cost of a request is bounded by these
        # lengths, not by how many items a body manages to hold.
        if not isinstance(data, dict):
            return data
        unknown = [str(key) for key in data if key not in _FIELD_NAMES]
        if unknown:
            more = f" and {len(unknown) - 3} more" if len(unknown) > 3 else ""
            raise ValueError(f"{', '.join(unknown[:3])}{more}: not known fields")
        for name, limit in _LIST_LIMITS.items():
            value = data.get(name)
            if isinstance(value, list | dict) and len(value) > limit:
                raise ValueError(f"{name} has {len(value)} items; at most {limit}")
        count = sum(len(v) for n in ("to", "cc", "bcc") if isinstance(v := data.get(n), list))
        if count > MAX_RECIPIENTS:
            raise ValueError(
                f"to, cc and bcc have {count} recipients together; at most {MAX_RECIPIENTS}"
            )
        return data

    @model_validator(mode="after")
    def _recipient_limit(self) -> MailRequest:
        count = self.recipient_count
        if count > MAX_RECIPIENTS:
            raise ValueError(
                f"to, cc and bcc have {count} recipients together; at most {MAX_RECIPIENTS}"
            )
        return self

    @property
    def recipient_count(self) -> int:
        return len(self.to) + len(self.cc) + len(self.bcc)

    @property
    def due_at(self) -> float | None:
        """``scheduled_at`` as an epoch second, or None when unscheduled."""
        if self.scheduled_at is None:
            return None
        return parse_rfc3339(self.scheduled_at).timestamp()


_FIELD_NAMES = frozenset(
    name
    for field_name, info in MailRequest.model_fields.items()
    for name in (field_name, info.alias)
    if name is not None
)


class QueuedMail(BaseModel):
    """The envelope on the queue: the validated request plus what limbo adds to it."""

    model_config = ConfigDict(extra="forbid", frozen=True)

    v: int = ENVELOPE_VERSION
    id: str = Field(min_length=1, max_length=128)
    owner: str = Field(min_length=1, max_length=128)
    submitted_at: float
    # Envelopes from before streams existed were all transactional.
    stream: Stream = "transactional"
    mail: MailRequest

    def to_json(self) -> str:
        return self.model_dump_json(by_alias=True)

    @classmethod
    def from_json(cls, body: str | bytes) -> QueuedMail:
        return cls.model_validate_json(body)
