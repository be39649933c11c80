"""Validation errors as one line: field paths for clients, variable names for operators."""

from __future__ import annotations

import pytest
from pydantic import BaseModel, ConfigDict, ValidationError, field_validator

from limbo_shared.errors import describe_settings_error, describe_validation_error


class Inner(BaseModel):
    model_config = ConfigDict(extra="forbid")
    name: str


class Outer(BaseModel):
    model_config = ConfigDict(extra="forbid")
    to: list[int]
    inner: Inner
    tags: dict[str, int] = {}

    @field_validator("tags")
    @classmethod
    def _small(cls, value: dict[str, int]) -> dict[str, int]:
        if len(value) > 1:
            raise ValueError("at most one tag")
        return value


def error_of(data: object) -> ValidationError:
    with pytest.raises(ValidationError) as caught:
        Outer.model_validate(data)
    return caught.value


def test_each_problem_names_its_field_path() -> None:
    text = describe_validation_error(error_of({"to": [1, "x"], "inner": {"name": 3}}))
    assert text.split("; ") == [
        "to[1]: Input should be a valid integer, unable to parse string as an integer",
        "inner.name: Input should be a valid string",
    ]


def test_missing_and_unknown_fields_say_so_in_words() -> None:
    text = describe_validation_error(error_of({"inner": {"name": "a", "nick": "b"}}))
    assert text == "to: is required; inner.nick: is not a known field"


def test_a_validator_message_loses_pydantics_prefix() -> None:
    text = describe_validation_error(
        error_of({"to": [], "inner": {"name": "a"}, "tags": {"a": 1, "b": 2}})
    )
    assert text == "tags: at most one tag"


def test_only_the_first_problems_are_listed_and_the_rest_counted() -> None:
    text = describe_validation_error(error_of({"to": ["a", "b", "c"], "inner": {}}), limit=2)
    assert text.split("; ") == [
        "to[0]: Input should be a valid integer, unable to parse string as an integer",
        "to[1]: Input should be a valid integer, unable to parse string as an integer",
        "and 2 more",
    ]


def test_settings_errors_name_the_environment_variable() -> None:
    class Settings(BaseModel):
        queue: str
        port: int

    with pytest.raises(ValidationError) as caught:
        Settings.model_validate({"port": "eighty"})
    assert describe_settings_error(caught.value) == (
        "QUEUE is not set; PORT is invalid: "
        "Input should be a valid integer, unable to parse string as an integer"
    )
