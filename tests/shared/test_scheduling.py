"""scheduled_at, and the scheduler's one decision: wait (at most 15 minutes) or hand over."""

from __future__ import annotations

from datetime import UTC, datetime

import pytest
from pydantic import ValidationError

from limbo_shared.scheduling import MAX_DELAY_SECONDS, Due, Wait, next_step, parse_rfc3339
from limbo_shared.schema import MailRequest

VALID = {"from": "a@example.com", "to": ["b@example.com"], "subject": "Hi", "message": "Body"}


@pytest.mark.parametrize(
    "text,expected",
    [
        ("2026-12-01T10:00:00Z", datetime(2026, 12, 1, 10, tzinfo=UTC)),
        ("2026-12-01t10:00:00z", datetime(2026, 12, 1, 10, tzinfo=UTC)),
        ("2026-12-01T11:00:00+01:00", datetime(2026, 12, 1, 10, tzinfo=UTC)),
        ("2026-12-01T10:00:00.123456789Z", datetime(2026, 12, 1, 10, 0, 0, 123456, tzinfo=UTC)),
        ("2026-12-01T10:00:00.5-00:30", datetime(2026, 12, 1, 10, 30, 0, 500000, tzinfo=UTC)),
    ],
)
def test_rfc3339_times_are_read_in_utc(text: str, expected: datetime) -> None:
    assert parse_rfc3339(text) == expected


@pytest.mark.parametrize(
    "text",
    ["2026-12-01T10:00:00", "2026-12-01 10:00:00Z", "tomorrow", "2026-13-01T10:00:00Z", ""],
)
def test_times_without_an_offset_or_malformed_are_refused(text: str) -> None:
    with pytest.raises(ValidationError, match="scheduled_at"):
        MailRequest.model_validate({**VALID, "scheduled_at": text})


def test_a_mail_knows_when_it_is_due() -> None:
    mail = MailRequest.model_validate({**VALID, "scheduled_at": "2026-12-01T10:00:00Z"})
    assert mail.due_at == datetime(2026, 12, 1, 10, tzinfo=UTC).timestamp()
    assert MailRequest.model_validate(VALID).due_at is None


@pytest.mark.parametrize(
    "left,step",
    [
        (-5.0, Due()),
        (0.0, Due()),
        (0.2, Wait(1)),
        (4.1, Wait(5)),
        (899.5, Wait(900)),
        (3 * 86400.0, Wait(MAX_DELAY_SECONDS)),
    ],
)
def test_a_message_waits_the_time_left_rounded_up_at_most_15_minutes(
    left: float, step: Due | Wait
) -> None:
    assert next_step(1_000_000.0 + left, 1_000_000.0) == step
