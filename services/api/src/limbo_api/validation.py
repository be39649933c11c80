"""Turning a request body into a :class:`MailRequest`, or a Problem naming the field."""

from __future__ import annotations

import json
from typing import Any

from pydantic import TypeAdapter, ValidationError

from limbo_shared.attachments import MAX_ATTACHMENTS
from limbo_shared.errors import describe_validation_error
from limbo_shared.schema import MailRequest

__all__ = ["MAX_BATCH", "InvalidMail", "parse_batch", "parse_json_object", "parse_mail"]

# A mail has at most 3 + MAX_ATTACHMENTS JSON objects (the body, headers, tags and one
# per attachment): parsing stops at the first one too many, so a body of 100,000 small
# objects costs nothing to refuse.
_MAX_OBJECTS = 3 + MAX_ATTACHMENTS
# Emails per POST /v1/mail/batch (Resend and useSend take 100 too).
MAX_BATCH = 100
_BATCH = TypeAdapter(list[MailRequest])
# Keys in any one of them: the body has 13 fields, headers 14, tags 10. More is refused
# before a dict is built, so 100,000 keys cost no more than the JSON parse.
_MAX_KEYS = 32


class InvalidMail(Exception):
    def __init__(self, problem: str, status: int = 400) -> None:
        super().__init__(problem)
        self.problem = problem
        self.status = status


class _ObjectHook:
    def __init__(self, mails: int = 1) -> None:
        self.objects = 0
        self.limit = _MAX_OBJECTS * mails

    def __call__(self, pairs: list[tuple[str, Any]]) -> dict[str, Any]:
        self.objects += 1
        if self.objects > self.limit:
            raise InvalidMail(
                f"body holds more than {self.limit} JSON objects; a mail has the body, "
                f"headers, tags and up to {MAX_ATTACHMENTS} attachments"
            )
        if len(pairs) > _MAX_KEYS:
            raise InvalidMail(
                f"an object in the body has {len(pairs)} keys; a mail's have at most {_MAX_KEYS}"
            )
        return _reject_duplicates(pairs)


def _reject_duplicates(pairs: list[tuple[str, Any]]) -> dict[str, Any]:
    result = dict(pairs)
    if len(result) == len(pairs):
        return result
    seen: set[str] = set()
    for key, _ in pairs:
        if key in seen:
            # Two parsers may pick different copies; refusing removes the ambiguity.
            raise InvalidMail(f"{key}: appears more than once in the same object")
        seen.add(key)
    return result


def _load(body: bytes, what: str, mails: int) -> Any:
    if not body.strip():
        raise InvalidMail(f"body is empty; send {what}")
    try:
        return json.loads(body, object_pairs_hook=_ObjectHook(mails))
    except InvalidMail:
        raise
    except RecursionError:
        raise InvalidMail("body is nested too deeply") from None
    except (ValueError, UnicodeDecodeError) as error:
        raise InvalidMail(f"body is not valid JSON: {error}") from None


def parse_batch(body: bytes) -> list[MailRequest]:
    """A JSON array of 1 to MAX_BATCH emails; a problem names the index: ``[3].to[0]``."""
    data = _load(body, "a JSON array of emails", MAX_BATCH)
    if not isinstance(data, list):
        raise InvalidMail(f"body must be a JSON array of emails, not {type(data).__name__}")
    if not 1 <= len(data) <= MAX_BATCH:
        raise InvalidMail(f"a batch holds 1 to {MAX_BATCH} emails, not {len(data)}")
    try:
        return _BATCH.validate_python(data)
    except ValidationError as error:
        raise InvalidMail(describe_validation_error(error)) from None


def parse_json_object(body: bytes) -> dict[str, Any]:
    """The body as one JSON object (bounded and duplicate keys refused, as a mail's), or
    InvalidMail saying why."""
    data = _load(body, "a JSON object", 1)
    if not isinstance(data, dict):
        raise InvalidMail(f"body must be a JSON object, not {type(data).__name__}")
    return data


def parse_mail(body: bytes) -> MailRequest:
    data = parse_json_object(body)
    try:
        return MailRequest.model_validate(data)
    except ValidationError as error:
        raise InvalidMail(describe_validation_error(error)) from None
