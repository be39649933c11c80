"""A token bucket shared by every replica, one item in the status table.

The item (``pk = rate#<provider>``) holds the tokens left, when they were counted, a
version, and an optional cut (a factor and until when) that a throttling answer from the
provider sets. A replica takes several tokens at once (a lease) with one conditional
write on the version it last saw; when another replica wrote first, DynamoDB answers
with the item as it is now (``ReturnValuesOnConditionCheckFailure``) and the take is
computed again from that, so a contended take costs one call more, not a read.
Refill uses the caller's clock, never earlier than the item's: a replica whose clock is
behind cannot mint tokens.
"""

from __future__ import annotations

import math
import time
from collections.abc import Callable
from dataclasses import dataclass
from typing import Any

from .table import ConditionFailed, DynamoTable

__all__ = ["Grant", "SharedBucket"]

# Conflicting writers give up after this many tries in one take; the caller waits a little.
_ATTEMPTS = 8


@dataclass(frozen=True)
class Grant:
    """``tokens`` taken now (0 when empty), else ``wait`` seconds until one is there."""

    tokens: int
    wait: float = 0.0


@dataclass
class _State:
    tokens: float
    at: float
    version: int
    cut: float = 1.0
    cut_until: float = 0.0

    def rate(self, rate: float, now: float) -> float:
        return rate * self.cut if now < self.cut_until else rate


class SharedBucket:
    def __init__(
        self, table: DynamoTable, name: str, clock: Callable[[], float] = time.time
    ) -> None:
        self.table = table
        self.key = {"pk": {"S": f"rate#{name}"}}
        self._clock = clock
        self._seen: _State | None = None

    async def take(self, want: int, *, rate: float, burst: float) -> Grant:
        """Up to ``want`` tokens of a bucket refilled at ``rate``/s and holding ``burst``."""
        state = self._seen or await self._read(burst)
        for _ in range(_ATTEMPTS):
            now = max(self._clock(), state.at)
            effective = state.rate(rate, now)
            available = min(burst, state.tokens + (now - state.at) * effective)
            granted = min(want, math.floor(available))
            if granted <= 0:
                self._seen = state
                return Grant(0, (1 - available) / effective)
            new = _State(available - granted, now, state.version + 1, state.cut, state.cut_until)
            try:
                await self._write(new, expected=state.version)
            except ConditionFailed as refused:
                state = _parse(refused.item) if refused.item else await self._read(burst)
                continue
            self._seen = new
            return Grant(granted)
        self._seen = None
        return Grant(0, 0.05)

    async def cut(self, factor: float, seconds: float) -> None:
        """Lower the rate for every replica to ``factor`` of itself for ``seconds``."""
        until = self._clock() + seconds
        await self.table.call(
            "update_item",
            lambda client, table: client.update_item(
                TableName=table,
                Key=self.key,
                UpdateExpression="SET #cut = :cut, #until = :until ADD #version :one",
                ExpressionAttributeNames={"#cut": "cut", "#until": "cut_until", "#version": "v"},
                ExpressionAttributeValues={
                    ":cut": {"N": repr(factor)},
                    ":until": {"N": repr(until)},
                    ":one": {"N": "1"},
                },
            ),
        )
        # The next take reads what the others wrote rather than overwriting the cut.
        self._seen = None

    async def _read(self, burst: float) -> _State:
        response = await self.table.call(
            "get_item",
            lambda client, table: client.get_item(
                TableName=table, Key=self.key, ConsistentRead=True
            ),
        )
        item = response.get("Item")
        if not item:
            return _State(tokens=burst, at=self._clock(), version=0)
        return _parse(dict(item))

    async def _write(self, state: _State, *, expected: int) -> None:
        item = {
            **self.key,
            "tokens": {"N": repr(state.tokens)},
            "at": {"N": repr(state.at)},
            "v": {"N": str(state.version)},
            "cut": {"N": repr(state.cut)},
            "cut_until": {"N": repr(state.cut_until)},
        }
        if expected == 0:
            await self.table.put_if(item, "attribute_not_exists(pk)", return_old=True)
            return
        await self.table.put_if(
            item,
            "#version = :expected",
            names={"#version": "v"},
            values={":expected": {"N": str(expected)}},
            return_old=True,
        )


def _parse(item: dict[str, Any]) -> _State:
    def number(name: str, default: float) -> float:
        value = item.get(name)
        return float(value["N"]) if value else default

    return _State(
        tokens=number("tokens", 0.0),
        at=number("at", 0.0),
        version=int(number("v", 0)),
        cut=number("cut", 1.0),
        cut_until=number("cut_until", 0.0),
    )
