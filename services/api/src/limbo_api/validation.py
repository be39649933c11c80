"""Turning a request body into a :class:`MailRequest`, or a Problem naming the field."""

from __future__ import annotations

import json
from typing import Any

from pydantic import ValidationError

from limbo_shared.schema import MailRequest

__all__ = ["InvalidMail", "parse_json_object", "parse_mail"]

_MAX_PROBLEMS = 5


class InvalidMail(Exception):
    def __init__(self, problem: str, status: int = 400) -> None:
        super().__init__(problem)
        self.problem = problem
        self.status = status


def _reject_duplicates(pairs: list[tuple[str, Any]]) -> dict[str, Any]:
    result: dict[str, Any] = {}
    for key, value in pairs:
        if key in result:
            # Two parsers may pick different copies; refusing removes the ambiguity.
            raise InvalidMail(f"{key}: appears more than once in the same object")
        result[key] = value
    return result


def parse_json_object(body: bytes) -> dict[str, Any]:
    """The body as a JSON object (duplicate keys refused), or InvalidMail saying why."""
    if not body.strip():
        raise InvalidMail("body is empty; send a JSON object")
    try:
        data = json.loads(body, object_pairs_hook=_reject_duplicates)
    except InvalidMail:
        raise
    except RecursionError:
        raise InvalidMail("body is nested too deeply") from None
    except (ValueError, UnicodeDecodeError) as error:
        raise InvalidMail(f"body is not valid JSON: {error}") from None
    if not isinstance(data, dict):
        raise InvalidMail(f"body must be a JSON object, not {type(data).__name__}")
    return data


def parse_mail(body: bytes) -> MailRequest:
    data = parse_json_object(body)
    try:
        return MailRequest.model_validate(data)
    except ValidationError as error:
        raise InvalidMail(describe(error)) from None


def describe(error: ValidationError) -> str:
    problems = []
    for item in error.errors()[:_MAX_PROBLEMS]:
        where = _location(item["loc"])
        message = str(item["msg"]).removeprefix("Value error, ")
        if item["type"] == "missing":
            message = "is required"
        elif item["type"] == "extra_forbidden":
            message = "is not a known field"
        problems.append(f"{where}: {message}" if where else message)
    if error.error_count() > _MAX_PROBLEMS:
        problems.append(f"and {error.error_count() - _MAX_PROBLEMS} more")
    return "; ".join(problems)


def _location(loc: tuple[int | str, ...]) -> str:
    where = ""
    for part in loc:
        if isinstance(part, int):
            where += f"[{part}]"
        elif part in ("[key]",):
            continue
        else:
            where += f".{part}" if where else str(part)
    return where
