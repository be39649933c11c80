"""A worker's recent provider calls, as the routing report counts them."""

from __future__ import annotations

from limbo_shared.worker.health import CallWindow


class Clock:
    def __init__(self) -> None:
        self.now = 100.0

    def __call__(self) -> float:
        return self.now


def test_calls_and_failures_of_the_window_are_counted() -> None:
    clock = Clock()
    calls = CallWindow(20.0, clock)
    for failed in (False, True, True):
        calls.record(failed=failed)
    assert calls.counts() == (3, 2)


def test_calls_older_than_the_window_are_forgotten() -> None:
    clock = Clock()
    calls = CallWindow(20.0, clock)
    calls.record(failed=True)
    clock.now += 15
    calls.record(failed=False)
    clock.now += 6
    assert calls.counts() == (1, 0)
    clock.now += 20
    assert calls.counts() == (0, 0)
