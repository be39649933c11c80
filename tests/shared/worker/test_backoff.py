from __future__ import annotations

import pytest

from limbo_shared.worker.backoff import retry_delay, visibility_seconds


def no_jitter(low: float, high: float) -> float:
    return 1.0


def test_the_delay_doubles_with_each_attempt() -> None:
    delays = [retry_delay(n, base=5, cap=900, jitter=no_jitter) for n in (1, 2, 3, 4)]
    assert delays == [5, 10, 20, 40]


def test_the_delay_is_capped() -> None:
    assert retry_delay(30, base=5, cap=900, jitter=no_jitter) == 900


@pytest.mark.parametrize("factor", [0.8, 1.2])
def test_jitter_spreads_the_delay_by_at_most_a_fifth(factor: float) -> None:
    assert retry_delay(2, base=5, cap=900, jitter=lambda lo, hi: factor) == pytest.approx(
        10 * factor
    )


def test_jitter_is_drawn_between_four_fifths_and_six_fifths() -> None:
    bounds: list[tuple[float, float]] = []
    retry_delay(1, base=5, cap=900, jitter=lambda lo, hi: bounds.append((lo, hi)) or 1.0)
    assert bounds == [(0.8, 1.2)]


def test_a_longer_retry_after_wins_up_to_the_cap() -> None:
    assert retry_delay(1, base=5, cap=900, retry_after=60, jitter=no_jitter) == 60
    assert retry_delay(1, base=5, cap=900, retry_after=2, jitter=no_jitter) == 5
    assert retry_delay(1, base=5, cap=30, retry_after=3600, jitter=no_jitter) == 30


@pytest.mark.parametrize(
    ("delay", "seconds"), [(0, 0), (0.2, 1), (1.0, 1), (1.5, 2), (4.01, 5), (-1, 0), (1e9, 43200)]
)
def test_visibility_is_the_delay_rounded_up_within_sqs_limits(delay: float, seconds: int) -> None:
    assert visibility_seconds(delay) == seconds
