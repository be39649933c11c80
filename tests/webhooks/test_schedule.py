"""The retry schedule: exponential, capped, at least a day, in hops SQS can delay."""

from __future__ import annotations

import itertools

from limbo_webhooks.schedule import MAX_SQS_DELAY, hop_delay, next_due
from limbo_webhooks.settings import WebhookSettings

DAY = 86_400.0


def _schedule(settings: WebhookSettings) -> list[float]:
    """The attempt times of a webhook whose every attempt fails (attempt 1 at 0 s)."""
    times, now, made = [0.0], 0.0, 1
    while (
        due := next_due(
            made,
            now=now,
            created_at=0.0,
            base=settings.webhook_retry_base,
            cap=settings.webhook_retry_max,
            retry_for=settings.webhook_retry_for,
        )
    ) is not None:
        times.append(due)
        now, made = due, made + 1
    return times


def _settings() -> WebhookSettings:
    return WebhookSettings(
        queue="https://sqs.us-east-1.amazonaws.com/1/hooks",
        region="us-east-1",
        status_table="limbo-status",
    )


def test_the_defaults_retry_for_more_than_a_day() -> None:
    times = _schedule(_settings())
    gaps = [b - a for a, b in itertools.pairwise(times)]
    assert times[-1] >= DAY
    # Exponential (±20 % jitter) from 5 s, then capped at 4 h.
    assert 4 <= gaps[0] <= 6
    assert all(g2 >= g1 * 1.3 for g1, g2 in itertools.pairwise(gaps[:9]))
    assert max(gaps) <= 4 * 3600 + 1e-6
    assert 15 <= len(times) <= 25


def test_a_wait_longer_than_sqs_allows_is_several_hops() -> None:
    assert hop_delay(due_at=100.0, now=100.0) == 0
    assert hop_delay(due_at=100.4, now=100.0) == 1  # rounded up, never early
    assert hop_delay(due_at=4 * 3600.0, now=0.0) == MAX_SQS_DELAY == 900
    now, hops = 0.0, 0
    while (delay := hop_delay(4 * 3600.0, now)) > 0:
        now, hops = now + delay, hops + 1
    assert hops == 16


def test_the_webhook_queue_is_a_standard_queue() -> None:
    import pytest
    from pydantic import ValidationError

    with pytest.raises(ValidationError, match="standard queue"):
        WebhookSettings(
            queue="https://sqs.us-east-1.amazonaws.com/1/hooks.fifo",
            region="us-east-1",
            status_table="limbo-status",
        )
