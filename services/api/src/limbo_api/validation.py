"""Turning a request body into a :class:`MailRequest`, or a Problem naming the field."""

from __future__ import annotations

import json
from typing import Any

from pydantic import ValidationError

from limbo_shared.errors import describe_validation_error
from limbo_shared.schema import MailRequest

__all__ = ["InvalidMail", "parse_mail"]

# A mail has at most three JSON objects (the body, headers, tags): parsing stops at the
# first one too many, so a body of 100,000 small objects costs nothing to refuse.
_MAX_OBJECTS = 3


class InvalidMail(Exception):
    def __init__(self, problem: str, status: int = 400) -> None:
        super().__init__(problem)
        self.problem = problem
        self.status = status


class _ObjectHook:
    def __init__(self) -> None:
        self.objects = 0

    def __call__(self, pairs: list[tuple[str, Any]]) -> dict[str, Any]:
        self.objects += 1
        if self.objects > _MAX_OBJECTS:
            raise InvalidMail(
                f"body holds more than {_MAX_OBJECTS} JSON objects; "
                "a mail has the body, headers and tags"
            )
        return _reject_duplicates(pairs)


def _reject_duplicates(pairs: list[tuple[str, Any]]) -> dict[str, Any]:
    result: dict[str, Any] = {}
    for key, value in pairs:
        if key in result:
            # Two parsers may pick different copies; refusing removes the ambiguity.
            raise InvalidMail(f"{key}: appears more than once in the same object")
        result[key] = value
    return result


def parse_mail(body: bytes) -> MailRequest:
    if not body.strip():
        raise InvalidMail("body is empty; send a JSON object")
    try:
        data = json.loads(body, object_pairs_hook=_ObjectHook())
    except InvalidMail:
        raise
    except RecursionError:
        raise InvalidMail("body is nested too deeply") from None
    except (ValueError, UnicodeDecodeError) as error:
        raise InvalidMail(f"body is not valid JSON: {error}") from None
    if not isinstance(data, dict):
        raise InvalidMail(f"body must be a JSON object, not {type(data).__name__}")
    try:
        return MailRequest.model_validate(data)
    except ValidationError as error:
        raise InvalidMail(describe_validation_error(error)) from None
