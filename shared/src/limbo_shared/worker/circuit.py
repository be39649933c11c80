"""A circuit per dependency: closed while it answers, open (paused) while it does not.

A consumer asks its circuits before every receive and receives nothing while one is
open. The handler that met the failure trips the circuit; from then on one probe at a
time (half-open) asks the dependency, with exponential backoff, until it answers;
then the circuit closes and the consumer resumes.
"""

from __future__ import annotations

import asyncio
import random
import time
from collections.abc import Awaitable, Callable
from enum import StrEnum

from ..logs import get_logger

__all__ = ["Circuit", "CircuitState"]

log = get_logger("limbo.worker.circuit")


class CircuitState(StrEnum):
    CLOSED = "closed"
    OPEN = "open"
    HALF_OPEN = "half_open"


Probe = Callable[[], Awaitable[None]]


class Circuit:
    """One dependency's state. ``probe`` raises while the dependency is still unwell."""

    def __init__(
        self,
        name: str,
        probe: Probe,
        *,
        first_probe: float = 1.0,
        max_probe: float = 30.0,
        probe_timeout: float = 10.0,
        on_change: Callable[[Circuit], None] | None = None,
    ) -> None:
        self.name = name
        self._probe = probe
        self.first_probe = first_probe
        self.max_probe = max_probe
        self._probe_timeout = probe_timeout
        self.on_change = on_change
        self.state = CircuitState.CLOSED
        self.reason: str | None = None
        self.probes = 0
        self._closed = asyncio.Event()
        self._closed.set()
        self._prober: asyncio.Task[None] | None = None
        self._delay = first_probe
        self._closed_at = 0.0

    @property
    def is_closed(self) -> bool:
        return self.state is CircuitState.CLOSED

    def trip(self, reason: str) -> bool:
        """Open the circuit; True when this call opened it (the start of a pause)."""
        if self.state is not CircuitState.CLOSED:
            return False
        # A dependency that fails again right after it answered a probe (a probe that
        # does not see everything a send meets) keeps backing off instead of starting over.
        if time.monotonic() - self._closed_at > self.max_probe:
            self._delay = self.first_probe
        self.state = CircuitState.OPEN
        self.reason = reason
        self._closed.clear()
        self._prober = asyncio.get_running_loop().create_task(
            self._probe_until_answered(), name=f"probe-{self.name}"
        )
        self._changed()
        return True

    async def wait_closed(self) -> None:
        await self._closed.wait()

    async def _probe_until_answered(self) -> None:
        while True:
            await asyncio.sleep(self._delay * random.uniform(0.8, 1.0))
            self._delay = min(self.max_probe, self._delay * 2)
            self.state = CircuitState.HALF_OPEN
            self.probes += 1
            try:
                await asyncio.wait_for(self._probe(), timeout=self._probe_timeout)
            except asyncio.CancelledError:
                raise
            except Exception as error:
                self.state = CircuitState.OPEN
                log.debug("probe failed", circuit=self.name, error=type(error).__name__)
                continue
            break
        self.state = CircuitState.CLOSED
        self.reason = None
        self._closed_at = time.monotonic()
        self._closed.set()
        self._changed()

    def _changed(self) -> None:
        if self.on_change is not None:
            self.on_change(self)

    async def aclose(self) -> None:
        if self._prober is not None and not self._prober.done():
            self._prober.cancel()
            await asyncio.gather(self._prober, return_exceptions=True)
