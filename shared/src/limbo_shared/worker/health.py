"""One worker's recent provider calls: how many, and how many failed for the moment.

The mail handler records every provider call; the router reports the counts of the
last ``window`` seconds on the health board. Only transient failures (5xx, timeouts,
connection errors) count as errors: a permanent refusal is the message's fault, a
throttling answer is limbo sending too fast (the shared rate limit's business), and an
account refusal pauses the worker, which is reported on its own.
"""

from __future__ import annotations

import time
from collections import deque
from collections.abc import Callable

__all__ = ["CallWindow"]


class CallWindow:
    def __init__(self, window: float, clock: Callable[[], float] = time.monotonic) -> None:
        self.window = window
        self._clock = clock
        self._calls: deque[tuple[float, bool]] = deque()

    def record(self, *, failed: bool) -> None:
        self._calls.append((self._clock(), failed))
        self._forget()

    def counts(self) -> tuple[int, int]:
        """Calls and transient failures in the last ``window`` seconds."""
        self._forget()
        return len(self._calls), sum(1 for _, failed in self._calls if failed)

    def _forget(self) -> None:
        horizon = self._clock() - self.window
        while self._calls and self._calls[0][0] < horizon:
            self._calls.popleft()
