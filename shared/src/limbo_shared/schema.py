"""The message schema: what a client submits and what travels on the queue.

The API validates with these models and the workers validate again on receipt, so
one definition decides what a valid email is on both sides of the queue.
"""

from __future__ import annotations

import functools
import re
from typing import Annotated, Any, Literal

from email_validator import SPECIAL_USE_DOMAIN_NAMES, EmailNotValidError, validate_email
from pydantic import (
    AfterValidator,
    BaseModel,
    ConfigDict,
    Field,
    StringConstraints,
    model_validator,
)

__all__ = [
    "ENVELOPE_VERSION",
    "MAX_RECIPIENTS",
    "STREAMS",
    "Address",
    "MailRequest",
    "QueuedMail",
    "Stream",
]

# SES refuses a message with more than 50 recipients across To, Cc and Bcc.
MAX_RECIPIENTS = 50
# SES accepts at most 15 custom headers on a Simple message.
MAX_HEADERS = 15
MAX_TAGS = 10
ENVELOPE_VERSION = 1

# Each stream has its own queue; workers serve `transactional` first (see README).
Stream = Literal["transactional", "bulk"]
STREAMS: tuple[Stream, ...] = ("transactional", "bulk")

_LINE_BREAKS = re.compile(r"[\r\n\x00]")
# RFC 5322 field names: printable ASCII except colon and space.
_HEADER_NAME = re.compile(r"^[!-9;-~]{1,76}$")
# Headers limbo or the provider sets itself; letting a client set them would let it
# rewrite the envelope behind the validation above.
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
        "content-type",
        "content-transfer-encoding",
        "mime-version",
        "date",
        "message-id",
    }
)


def _no_line_breaks(value: str) -> str:
    if _LINE_BREAKS.search(value):
        raise ValueError("must not contain CR, LF or NUL (header injection)")
    return value


def _no_nul(value: str) -> str:
    if "\x00" in value:
        raise ValueError("must not contain NUL characters")
    return value


# Validating an address costs ~25 µs (email_validator); senders repeat on nearly every
# message, on the API and again on the worker, so answers for valid ones are kept.
# Invalid ones raise and are never cached.
@functools.lru_cache(maxsize=4096)
def _email_address(value: str) -> str:
    _no_line_breaks(value)
    value = value.strip()
    # Either a bare address or `Display Name <address>`; anything else (two addresses,
    # a comma list) would reach the provider as more recipients than were validated.
    address = value[:-1].rpartition("<")[2] if value.endswith(">") and "<" in value else value
    if not address or any(c in address for c in "<>,; \t"):
        raise ValueError("not a valid email address")
    try:
        validate_email(address, check_deliverability=False, allow_smtputf8=True)
    except EmailNotValidError as error:
        raise ValueError(f"not a valid email address: {error}") from None
    return value


def _header_name(value: str) -> str:
    if not _HEADER_NAME.match(value):
        raise ValueError(f"header name {value!r} is not a valid RFC 5322 field name")
    if value.lower() in _RESERVED_HEADERS:
        raise ValueError(f"header {value!r} is set by limbo and cannot be overridden")
    return value


Address = Annotated[
    str,
    StringConstraints(strict=True, min_length=3, max_length=320),
    AfterValidator(_email_address),
]
HeaderText = Annotated[
    str, StringConstraints(strict=True, max_length=998), AfterValidator(_no_line_breaks)
]
BodyText = Annotated[str, StringConstraints(strict=True), AfterValidator(_no_nul)]
HeaderName = Annotated[str, StringConstraints(strict=True), AfterValidator(_header_name)]
TagPart = Annotated[
    str, StringConstraints(strict=True, min_length=1, max_length=256, pattern=r"^[A-Za-z0-9_-]+$")
]


# JSON Schema (ECMA-262) patterns for what the validators above enforce.
_NO_BREAKS_PATTERN = r"^[^\r\n\u0000]*$"
_NO_NUL_PATTERN = r"^[^\u0000]*$"
_TAG_PATTERN = r"^[A-Za-z0-9_-]+$"
# Reserved names in any letter case, as alternatives of per-letter classes.
_RESERVED_PATTERN = (
    "^(?:"
    + "|".join(
        "".join(f"[{c.upper()}{c}]" if c.isalpha() else c for c in name)
        for name in sorted(_RESERVED_HEADERS)
    )
    + ")$"
)
# email_validator refuses special-use domains (RFC 6761: test, invalid, localhost...).
_SPECIAL_USE_PATTERN = (
    "@(?:[^@]*\\.)?(?:"
    + "|".join("".join(f"[{c.upper()}{c}]" for c in name) for name in SPECIAL_USE_DOMAIN_NAMES)
    + ")\\.?>?$"
)


def _document_constraints(schema: dict[str, Any]) -> None:
    """Put into the JSON schema what the validators enforce beyond types and lengths.

    /openapi.json is generated from this schema; clients and generated tests
    (schemathesis) then see the rules the API applies, not a looser version of them.
    """
    properties = schema["properties"]

    def address() -> dict[str, Any]:
        # Stated as an email address; `Name <addr>` (see the descriptions) is accepted too.
        return {
            "type": "string",
            "format": "email",
            "minLength": 3,
            "maxLength": 254,
            "not": {"pattern": _SPECIAL_USE_PATTERN},
        }

    properties["from"].update(address())
    for name in ("to", "cc", "bcc", "reply_to"):
        properties[name]["items"] = address()
    for name in ("to", "cc", "bcc"):
        # Each list alone; to, cc and bcc together are limited to the same number.
        properties[name]["maxItems"] = MAX_RECIPIENTS
    properties["subject"]["pattern"] = _NO_BREAKS_PATTERN
    properties["message"]["pattern"] = _NO_NUL_PATTERN
    properties["html"]["anyOf"][0]["pattern"] = _NO_NUL_PATTERN
    properties["headers"]["propertyNames"] = {
        "pattern": _HEADER_NAME.pattern,
        "not": {"pattern": _RESERVED_PATTERN},
    }
    properties["headers"]["additionalProperties"]["pattern"] = _NO_BREAKS_PATTERN
    tag = {"type": "string", "minLength": 1, "maxLength": 256, "pattern": _TAG_PATTERN}
    properties["tags"].pop("patternProperties", None)
    properties["tags"]["propertyNames"] = tag
    properties["tags"]["additionalProperties"] = tag


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
        description=f"Recipients (`addr` or `Name <addr>`), at least one; at most "
        f"{MAX_RECIPIENTS} across to, cc and bcc",
    )
    cc: list[Address] = Field(default_factory=list)
    bcc: list[Address] = Field(default_factory=list)
    subject: HeaderText = Field(min_length=1)
    message: BodyText = Field(description="Plain-text body")
    html: BodyText | None = Field(default=None, description="Optional HTML body")
    reply_to: list[Address] = Field(default_factory=list, max_length=10)
    headers: dict[HeaderName, HeaderText] = Field(
        default_factory=dict, max_length=MAX_HEADERS, description="Custom headers (X-...)"
    )
    tags: dict[TagPart, TagPart] = Field(
        default_factory=dict, max_length=MAX_TAGS, description="Name/value tags for reporting"
    )
    stream: Stream | None = Field(
        default=None,
        description="`transactional` or `bulk` (each has its own queue; transactional is "
        "served first); unset means the API key's default (see BULK_KEYS)",
    )

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

    @staticmethod
    def json_schema() -> dict[str, Any]:
        return QueuedMail.model_json_schema(by_alias=True)
