"""How many long polls a worker keeps open: one at rest, more while batches come back full.

Every open long poll costs a ReceiveMessage each ``WAIT_TIME_SECONDS`` even when the
queue is empty, so a worker at rest keeps one (three requests a minute at 20 s); it
already waits on the queue, so the first message after a quiet spell is not slowed.
A receive that comes back full *at once* says more is waiting: the number of polls
doubles, up to what the concurrency allows. One that came back full after waiting for
its messages says only that a batch landed (the API publishes a burst in batches of
ten): the polls stay as they are, since more open polls would share out the next batch
between them, one receive per share. One that comes back short at once says fewer
polls would do: it drops by one; one that waited and still came back short found the
queue empty, so the polls drop to one. The consumer's pollers consult the policy before
each receive.

A receive that comes back short *at once* found its messages already queued rather than
waiting for them: a burst is landing in pieces (the API's batches land tens of
milliseconds apart, and a sender's FIFO groups stay held until the messages received
from them are deleted), and asking again at once would fetch the next piece alone.
That poller waits ``gather`` (40 ms) first, so the next receive comes back fuller. At a
trickle a poll is open before each message arrives, so it waits for it and nothing
lingers; an idle worker's empty polls do not linger either, nor does a worker draining
a backlog (more than a batch in hand).
"""

from __future__ import annotations

import asyncio

__all__ = ["GATHER", "QUICK", "PollPolicy"]

# A receive answered within QUICK did not wait for its messages: they were queued.
QUICK = 0.04
GATHER = 0.04


class PollPolicy:
    def __init__(
        self, most: int, batch: int, *, quick: float = QUICK, gather: float = GATHER
    ) -> None:
        if most < 1 or batch < 1:
            raise ValueError("most and batch must be at least 1")
        self.most = most
        self.batch = batch
        self.quick = quick
        self.gather = gather
        self._wanted = 1
        self._changed = asyncio.Event()

    @property
    def wanted(self) -> int:
        """How many polls should be open now (1 to ``most``)."""
        return self._wanted

    def received(self, count: int, took: float = 0.0) -> None:
        """What one receive brought back, ``took`` seconds after it was asked."""
        if count >= self.batch:
            if took >= self.quick:
                return  # it waited for a batch to land: no sign of a backlog
            wanted = min(self.most, self._wanted * 2)
        elif took >= self.quick:
            # It waited and still came back short: the queue was empty, nothing is
            # backed up, and every extra open poll would take a share of the next batch.
            wanted = 1
        else:
            wanted = max(1, self._wanted - 1)
        if wanted != self._wanted:
            self._wanted = wanted
            self._changed.set()
            self._changed = asyncio.Event()

    def pause_after(self, count: int, took: float, in_hand: int) -> float:
        """Seconds to wait before the next receive, after one that brought ``count``
        messages ``took`` seconds after it was asked, with ``in_hand`` messages (these
        included) being handled. More than a batch in hand is a backlog being drained:
        there a short receive means the FIFO groups with messages are all busy, not that
        a burst is still landing, and waiting would only slow the drain."""
        if 0 < count < self.batch and took < self.quick and in_hand <= self.batch:
            return self.gather
        return 0.0

    def may_poll(self, index: int) -> bool:
        """Whether poller ``index`` (0 to ``most - 1``) should receive now."""
        return index < self._wanted

    async def wait_turn(self, index: int) -> None:
        """Return once poller ``index`` may receive (at once for poller 0)."""
        while not self.may_poll(index):
            await self._changed.wait()
