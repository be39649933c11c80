"""The health board: each worker replica's latest report on its provider, in the status table.

One item per provider (``pk = health#<provider>``) holds a map of replica reports
(``replicas.<replica id>`` = when, paused, calls and transient errors in the window).
A replica writes its own entry with one conditional update (the first write of an
item creates the map); replicas never overwrite each other's entries. Readers ignore
reports older than ``stale`` seconds, and a writer removes those it sees, so a replica
that went away (scaled down, killed) drops out on its own. The item's ``expires_at``
lets DynamoDB's TTL delete the board of a provider nothing runs for any more.
"""

from __future__ import annotations

import contextlib
import time
from collections.abc import Callable, Sequence
from dataclasses import dataclass
from typing import Any

from .table import ConditionFailed, DynamoTable

__all__ = ["HealthBoard", "ProviderHealth", "Report"]

# DynamoDB deletes a board nobody has written to for a day.
_TTL_SECONDS = 86_400


@dataclass(frozen=True)
class Report:
    """One replica's report: its provider circuit open, and its recent calls."""

    paused: bool
    sends: int
    errors: int


@dataclass(frozen=True)
class ProviderHealth:
    """What a provider's live replicas reported, added up."""

    replicas: int
    paused: bool
    sends: int
    errors: int


def _key(provider: str) -> dict[str, Any]:
    return {"pk": {"S": f"health#{provider}"}}


class HealthBoard:
    def __init__(
        self, table: DynamoTable, *, stale: float, clock: Callable[[], float] = time.time
    ) -> None:
        self.table = table
        self.stale = stale
        self._clock = clock
        self._gone: set[str] = set()

    async def report(self, provider: str, replica: str, report: Report) -> None:
        now = self._clock()
        entry = {
            "M": {
                "at": {"N": repr(now)},
                "paused": {"BOOL": report.paused},
                "sends": {"N": str(report.sends)},
                "errors": {"N": str(report.errors)},
            }
        }
        names = {"#replicas": "replicas", "#me": replica, "#expires": "expires_at"}
        values: dict[str, Any] = {":me": entry, ":expires": {"N": str(int(now) + _TTL_SECONDS)}}
        gone = sorted(self._gone - {replica})[:20]
        removes = ""
        if gone:
            names |= {f"#gone{n}": name for n, name in enumerate(gone)}
            removes = " REMOVE " + ", ".join(f"#replicas.#gone{n}" for n in range(len(gone)))
        try:
            response = await self.table.call(
                "update_item",
                lambda client, table: client.update_item(
                    TableName=table,
                    Key=_key(provider),
                    UpdateExpression=f"SET #replicas.#me = :me, #expires = :expires{removes}",
                    ConditionExpression="attribute_exists(#replicas)",
                    ExpressionAttributeNames=names,
                    ExpressionAttributeValues=values,
                    ReturnValues="ALL_NEW",
                ),
            )
        except ConditionFailed:
            # The board's first report: create the map. Should another replica create it
            # first, this refusal is answered by the next report's update.
            values[":replicas"] = {"M": {replica: entry}}
            del values[":me"]
            with contextlib.suppress(ConditionFailed):
                await self.table.call(
                    "update_item",
                    lambda client, table: client.update_item(
                        TableName=table,
                        Key=_key(provider),
                        UpdateExpression="SET #replicas = :replicas, #expires = :expires",
                        ConditionExpression="attribute_not_exists(#replicas)",
                        ExpressionAttributeNames={
                            "#replicas": "replicas",
                            "#expires": "expires_at",
                        },
                        ExpressionAttributeValues=values,
                    ),
                )
            return
        self._gone = set(self._stale_entries(response.get("Attributes", {}), now))

    async def read(self, providers: Sequence[str]) -> dict[str, ProviderHealth | None]:
        """Each provider's live replicas added up; None for a provider none reported for."""
        return {provider: await self._read_one(provider) for provider in providers}

    async def _read_one(self, provider: str) -> ProviderHealth | None:
        response = await self.table.call(
            "get_item",
            lambda client, table: client.get_item(
                TableName=table, Key=_key(provider), ConsistentRead=True
            ),
        )
        return self._add_up(dict(response.get("Item", {})), self._clock())

    def _live(self, item: dict[str, Any], now: float) -> list[dict[str, Any]]:
        replicas = item.get("replicas", {}).get("M", {})
        return [
            entry["M"]
            for entry in replicas.values()
            if now - float(entry["M"]["at"]["N"]) <= self.stale
        ]

    def _stale_entries(self, item: dict[str, Any], now: float) -> list[str]:
        replicas = item.get("replicas", {}).get("M", {})
        # Ten times as old as a live one: surely gone, not merely slow.
        return [
            name
            for name, entry in replicas.items()
            if now - float(entry["M"]["at"]["N"]) > 10 * self.stale
        ]

    def _add_up(self, item: dict[str, Any], now: float) -> ProviderHealth | None:
        live = self._live(item, now)
        if not live:
            return None
        return ProviderHealth(
            replicas=len(live),
            paused=any(entry["paused"]["BOOL"] for entry in live),
            sends=sum(int(entry["sends"]["N"]) for entry in live),
            errors=sum(int(entry["errors"]["N"]) for entry in live),
        )
