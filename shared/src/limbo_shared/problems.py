"""A pydantic ValidationError as the API's ``Problem`` text: each problem naming its field.

One home for this, for whatever turns a refused message into words for a client, a
status record or a dead letter. The text holds field names and pydantic's messages,
never the refused values.
"""

from __future__ import annotations

from pydantic import ValidationError

__all__ = ["problem_text"]


def problem_text(error: ValidationError, limit: int = 5) -> str:
    """``to[0]: must be exactly one mailbox ...; subject: is required; and 3 more``."""
    problems = []
    for item in error.errors(include_input=False)[:limit]:
        where = _location(item["loc"])
        message = str(item["msg"]).removeprefix("Value error, ")
        if item["type"] == "missing":
            message = "is required"
        elif item["type"] == "extra_forbidden":
            message = "is not a known field"
        problems.append(f"{where}: {message}" if where else message)
    if error.error_count() > limit:
        problems.append(f"and {error.error_count() - limit} more")
    return "; ".join(problems)


def _location(loc: tuple[int | str, ...]) -> str:
    where = ""
    for part in loc:
        if isinstance(part, int):
            where += f"[{part}]"
        elif part == "[key]":
            continue
        else:
            where += f".{part}" if where else str(part)
    return where
