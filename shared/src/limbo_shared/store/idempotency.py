"""Idempotency keys: a repeated request gets the first one's answer instead of a new send.

A key is scoped to the API key that used it and kept 24 hours. The first request
reserves it (a conditional put) with a lease; the repeat either replays the answer
(same body, first request done), is refused (different body, or first still running),
or, when the first request died and its lease ran out, takes over with the same
message id, so whatever the dead request queued cannot be sent twice.
"""

from __future__ import annotations

import contextlib
import hashlib
import time
from dataclasses import dataclass
from enum import Enum
from typing import Any

from .table import ConditionFailed, DynamoTable, Update

__all__ = ["IDEMPOTENCY_TTL_SECONDS", "IdempotencyKeys", "Reservation", "ReservationOutcome"]

IDEMPOTENCY_TTL_SECONDS = 24 * 3600
_PENDING = "pending"
_DONE = "done"


class ReservationOutcome(Enum):
    NEW = "new"  # first use: go ahead with a fresh message id
    TAKEOVER = "takeover"  # the first request died: go ahead with its message id
    REPLAY = "replay"  # done before with the same body: answer with its message id
    CONFLICT = "conflict"  # used before with a different body
    IN_PROGRESS = "in_progress"  # the first request is still running


@dataclass(frozen=True)
class Reservation:
    outcome: ReservationOutcome
    message_id: str


def _key(owner: str, key: str) -> dict[str, Any]:
    # Hashed: the client's key may be 256 arbitrary characters; the hash is short and says
    # nothing about them.
    digest = hashlib.sha256(key.encode()).hexdigest()
    return {"pk": {"S": f"idem#{owner}#{digest}"}}


class IdempotencyKeys:
    def __init__(self, table: DynamoTable) -> None:
        self.table = table

    async def reserve(
        self, owner: str, key: str, *, fingerprint: str, message_id: str, lease_seconds: float
    ) -> Reservation:
        now = time.time()
        item = {
            **_key(owner, key),
            "message_id": {"S": message_id},
            "fingerprint": {"S": fingerprint},
            "state": {"S": _PENDING},
            "lease_until": {"N": repr(now + lease_seconds)},
            "created_at": {"N": repr(now)},
            "expires_at": {"N": str(int(now) + IDEMPOTENCY_TTL_SECONDS)},
        }
        try:
            # DynamoDB deletes expired items up to days late: an expired one counts as absent.
            await self.table.put_if(
                item,
                "attribute_not_exists(pk) OR expires_at < :now",
                values={":now": {"N": repr(now)}},
                return_old=True,
            )
        except ConditionFailed as refused:
            old = refused.item or await self._read(owner, key)
            if old is None:  # deleted between the two calls: the first request gave up
                return await self.reserve(
                    owner,
                    key,
                    fingerprint=fingerprint,
                    message_id=message_id,
                    lease_seconds=lease_seconds,
                )
            return await self._existing(owner, key, old, fingerprint, now, lease_seconds)
        return Reservation(ReservationOutcome.NEW, message_id)

    async def _existing(
        self,
        owner: str,
        key: str,
        old: dict[str, Any],
        fingerprint: str,
        now: float,
        lease_seconds: float,
    ) -> Reservation:
        old_id = old["message_id"]["S"]
        if old["fingerprint"]["S"] != fingerprint:
            return Reservation(ReservationOutcome.CONFLICT, old_id)
        if old["state"]["S"] == _DONE:
            return Reservation(ReservationOutcome.REPLAY, old_id)
        old_lease = old["lease_until"]["N"]
        if float(old_lease) >= now:
            return Reservation(ReservationOutcome.IN_PROGRESS, old_id)
        try:
            # Exactly one of several racing repeats wins the takeover.
            update = Update().set("lease_until", now + lease_seconds)
            await self._update(
                owner,
                key,
                update,
                f"{update.name('state')} = {update.value(_PENDING)} AND "
                f"{update.name('lease_until')} = {update.value(float(old_lease))}",
            )
        except ConditionFailed:
            return Reservation(ReservationOutcome.IN_PROGRESS, old_id)
        return Reservation(ReservationOutcome.TAKEOVER, old_id)

    async def _read(self, owner: str, key: str) -> dict[str, Any] | None:
        response = await self.table.call(
            "get_item",
            lambda client, table: client.get_item(
                TableName=table, Key=_key(owner, key), ConsistentRead=True
            ),
        )
        item: dict[str, Any] | None = response.get("Item")
        return item

    async def complete(self, owner: str, key: str, message_id: str) -> None:
        """The message is queued: repeats from now on replay the answer."""
        update = Update().set("state", _DONE).remove("lease_until")
        condition = f"{update.name('message_id')} = {update.value(message_id)}"
        await self._update(owner, key, update, condition)

    async def abandon(self, owner: str, key: str, message_id: str) -> None:
        """The request failed: let a repeat take over at once, with the same message id.

        Not a delete: a publish that timed out may still have reached the queue, and a
        repeat under a new id would then send the mail twice. Under the same id, SQS
        deduplication and the worker's claim make the repeat harmless.
        """
        update = Update().set("lease_until", 0)
        condition = (
            f"{update.name('message_id')} = {update.value(message_id)} AND "
            f"{update.name('state')} = {update.value(_PENDING)}"
        )
        with contextlib.suppress(ConditionFailed):
            await self._update(owner, key, update, condition)

    async def _update(self, owner: str, key: str, update: Update, condition: str) -> None:
        await self.table.update(_key(owner, key), update, condition)
