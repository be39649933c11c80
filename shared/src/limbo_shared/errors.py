"""Pydantic validation errors as the one-line text limbo shows people.

Two readers, two shapes: a client reads the API's ``Problem`` (field paths such as
``to[0]`` or ``headers.X-Tag``), an operator reads a configuration error (environment
variable names). Both come from here so they cannot drift apart.
"""

from __future__ import annotations

from pydantic import ValidationError

__all__ = ["describe_settings_error", "describe_validation_error"]

# A client that sends fifty bad fields learns of the first few; the rest are counted.
MAX_PROBLEMS = 5


def describe_validation_error(error: ValidationError, *, limit: int = MAX_PROBLEMS) -> str:
    """``field.path: what is wrong`` for the first ``limit`` problems, joined by ``; ``.

    Field names and pydantic's messages only, never the refused values.
    """
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


def describe_settings_error(error: ValidationError, *, prefix: str = "") -> str:
    """One clause per problem, each naming the environment variable (``prefix`` + FIELD)."""
    lines = []
    for item in error.errors():
        message = str(item["msg"]).removeprefix("Value error, ")
        if not item["loc"]:  # a check across variables names them in its message
            lines.append(message)
            continue
        variable = prefix + str(item["loc"][0]).upper()
        if item["type"] == "missing":
            lines.append(f"{variable} is not set")
        else:
            lines.append(f"{variable} is invalid: {message}")
    return "; ".join(lines)


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
