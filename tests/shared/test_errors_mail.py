"""A validation error as Problem text: every problem names its field, never the value."""

from __future__ import annotations

import pytest
from pydantic import ValidationError

from limbo_shared.errors import describe_validation_error
from limbo_shared.schema import MailRequest


def refusal(body: dict[str, object]) -> ValidationError:
    with pytest.raises(ValidationError) as raised:
        MailRequest.model_validate(body)
    return raised.value


def test_each_problem_names_its_field_in_the_apis_words() -> None:
    text = describe_validation_error(
        refusal({"to": ["ok@example.com", "x1@evil.example, secret@evil.example"], "extra": 1})
    )
    assert "extra: not known fields" in text
    error = refusal({"from": "a@example.com", "to": ["b@example.com", "bad"], "message": "m"})
    assert describe_validation_error(error) == (
        "to[1]: not a valid email address: An email address must have an @-sign.; "
        "subject: is required"
    )
    # The refused value itself is never repeated.
    assert "secret@evil.example" not in describe_validation_error(
        refusal({"from": "a@example.com", "to": ["x1@evil.example, secret@evil.example"]})
    )


def test_past_the_limit_the_rest_are_counted() -> None:
    error = refusal({"cc": [1, 2, 3]})
    assert describe_validation_error(error, limit=2).endswith(f"and {error.error_count() - 2} more")
