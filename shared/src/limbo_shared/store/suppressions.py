"""The suppression list: per API key, the addresses limbo no longer sends to.

An item per (owner, address), keyed ``supp#<owner>#<address>``; the sparse global
secondary index ``suppressions`` (hash ``supp_owner``, range ``supp_address``) lists one
owner's entries in pages. The API's check before a send is a BatchGetItem shared by
concurrent requests (up to 100 keys a call), so it costs a fraction of a call each.
"""

from __future__ import annotations

import asyncio
import base64
import re
import time
from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from email.utils import parseaddr
from typing import Any

from ..batching import Batcher
from .records import _iso
from .table import ConditionFailed, DynamoTable, StoreUnavailable

__all__ = [
    "CURSOR_PATTERN",
    "MAX_CURSOR",
    "SUPPRESSION_INDEX",
    "Suppression",
    "SuppressionPage",
    "Suppressions",
    "normalize_address",
]

SUPPRESSION_INDEX = "suppressions"
BATCH_GET_LIMIT = 100
MAX_DETAIL = 500
_UNPROCESSED_RETRIES = 3


def normalize_address(value: str) -> str:
    """The bare address of ``addr`` or ``Name <addr>``, lower-cased: one entry per mailbox
    however a client spells it (providers treat addresses case-insensitively too)."""
    _name, address = parseaddr(value.strip())
    return (address or value.strip()).lower()


def _key(owner: str, address: str) -> dict[str, Any]:
    return {"pk": {"S": f"supp#{owner}#{address}"}}


@dataclass(frozen=True)
class Suppression:
    address: str
    reason: str  # bounce, complaint, unsubscribe, manual
    source: str  # ses, mailgun, api
    created_at: float
    detail: str | None = None
    message_id: str | None = None

    def public(self) -> dict[str, Any]:
        return {
            "address": self.address,
            "reason": self.reason,
            "source": self.source,
            "detail": self.detail,
            "message_id": self.message_id,
            "created_at": _iso(self.created_at),
        }

    @classmethod
    def from_item(cls, item: dict[str, Any]) -> Suppression:
        def text(name: str) -> str | None:
            return item[name]["S"] if name in item else None

        return cls(
            address=item["supp_address"]["S"],
            reason=item["reason"]["S"],
            source=item["source"]["S"],
            created_at=float(item["created_at"]["N"]),
            detail=text("detail"),
            message_id=text("message_id"),
        )


@dataclass(frozen=True)
class SuppressionPage:
    entries: list[Suppression]
    cursor: str | None  # pass back as ``cursor`` for the next page; None on the last


# A cursor is the base64url (unpadded) of the address a page ended at: the next page
# starts after it. Any well-formed cursor is a position, so any is accepted; its decoded
# length is bounded by DynamoDB's 1,024 bytes for an index's sort key.
MAX_CURSOR_BYTES = 1_000
MAX_CURSOR = -(-MAX_CURSOR_BYTES * 4 // 3)
# Unpadded base64url of 1+ bytes: a length of 4k+1 characters encodes nothing.
CURSOR_PATTERN = "^(?:[A-Za-z0-9_-]{4})*(?:[A-Za-z0-9_-]{2,3})?$"
_CURSOR = re.compile(CURSOR_PATTERN)


def _cursor(address: str) -> str:
    return base64.urlsafe_b64encode(address.encode()).decode().rstrip("=")


def _address_of_cursor(cursor: str) -> str | None:
    """The address to start after (None: from the start). Raises ValueError for a cursor
    that is not unpadded base64url or is too long."""
    if len(cursor) > MAX_CURSOR or not _CURSOR.fullmatch(cursor):
        raise ValueError(
            f"cursor must be unpadded base64url of at most {MAX_CURSOR} characters, "
            "as the previous page gave it"
        )
    raw = base64.urlsafe_b64decode(cursor + "=" * (-len(cursor) % 4))
    # Not one this API handed out unless it is UTF-8; as a position it still works.
    text = raw.decode("utf-8", errors="replace").encode()[:MAX_CURSOR_BYTES]
    return text.decode("utf-8", errors="ignore") or None


class Suppressions:
    def __init__(self, table: DynamoTable, *, max_in_flight: int = 4) -> None:
        self.table = table
        self._lookups: Batcher[tuple[str, str], bool] = Batcher(
            self._lookup_batch, max_items=BATCH_GET_LIMIT, max_in_flight=max_in_flight
        )

    async def add(
        self,
        owner: str,
        address: str,
        *,
        reason: str,
        source: str,
        detail: str | None = None,
        message_id: str | None = None,
        keep_existing: bool = False,
    ) -> bool:
        """Suppress ``address``; False when ``keep_existing`` and it already was.

        Events keep an existing entry (a duplicate does not reset its date); a manual
        entry replaces it with the operator's reason.
        """
        address = normalize_address(address)
        item: dict[str, Any] = {
            **_key(owner, address),
            "supp_owner": {"S": owner},
            "supp_address": {"S": address},
            "reason": {"S": reason},
            "source": {"S": source},
            "created_at": {"N": repr(time.time())},
        }
        if detail:
            item["detail"] = {"S": detail[:MAX_DETAIL]}
        if message_id:
            item["message_id"] = {"S": message_id}
        try:
            if keep_existing:
                await self.table.call(
                    "put_item",
                    lambda client, table: client.put_item(
                        TableName=table, Item=item, ConditionExpression="attribute_not_exists(pk)"
                    ),
                )
            else:
                await self.table.call(
                    "put_item", lambda client, table: client.put_item(TableName=table, Item=item)
                )
        except ConditionFailed:
            return False
        return True

    async def get(self, owner: str, address: str) -> Suppression | None:
        response = await self.table.call(
            "get_item",
            lambda client, table: client.get_item(
                TableName=table, Key=_key(owner, normalize_address(address)), ConsistentRead=True
            ),
        )
        item = response.get("Item")
        return Suppression.from_item(item) if item else None

    async def remove(self, owner: str, address: str) -> bool:
        """True when there was an entry to remove."""
        response = await self.table.call(
            "delete_item",
            lambda client, table: client.delete_item(
                TableName=table, Key=_key(owner, normalize_address(address)), ReturnValues="ALL_OLD"
            ),
        )
        return bool(response.get("Attributes"))

    async def page(self, owner: str, *, limit: int, cursor: str | None = None) -> SuppressionPage:
        """One page of the owner's entries, in address order. Raises ValueError for a
        malformed cursor."""
        arguments: dict[str, Any] = {
            "IndexName": SUPPRESSION_INDEX,
            "KeyConditionExpression": "supp_owner = :owner",
            "ExpressionAttributeValues": {":owner": {"S": owner}},
            "Limit": limit,
        }
        address = None if cursor is None else _address_of_cursor(cursor)
        if address is not None:
            arguments["ExclusiveStartKey"] = {
                **_key(owner, address),
                "supp_owner": {"S": owner},
                "supp_address": {"S": address},
            }
        response = await self.table.call(
            "query",
            lambda client, table: client.query(TableName=table, **arguments),
        )
        entries = [Suppression.from_item(item) for item in response.get("Items", [])]
        last = response.get("LastEvaluatedKey")
        next_cursor = _cursor(last["supp_address"]["S"]) if last and entries else None
        return SuppressionPage(entries, next_cursor)

    async def suppressed(self, owner: str, addresses: Sequence[str]) -> set[str]:
        """Which of ``addresses`` (as given) are suppressed for ``owner``; one shared
        BatchGetItem for concurrent callers."""
        if not addresses:
            return set()
        found = await asyncio.gather(
            *(self._lookups.submit((owner, normalize_address(a))) for a in addresses)
        )
        return {address for address, hit in zip(addresses, found, strict=True) if hit}

    async def _lookup_batch(self, keys: Sequence[tuple[str, str]]) -> list[bool | BaseException]:
        wanted = {_key(owner, address)["pk"]["S"] for owner, address in keys}
        present: set[str] = set()
        pending: Sequence[Mapping[str, Any]] = [{"pk": {"S": pk}} for pk in sorted(wanted)]
        for _attempt in range(_UNPROCESSED_RETRIES + 1):
            response = await self.table.batch_get(pending)
            for item in response.get("Responses", {}).get(self.table.name, []):
                present.add(str(item["pk"]["S"]))
            unprocessed = response.get("UnprocessedKeys", {}).get(self.table.name)
            pending = unprocessed["Keys"] if unprocessed is not None else []
            if not pending:
                break
            await asyncio.sleep(0.05)
        else:
            error = StoreUnavailable("DynamoDB left suppression lookups unprocessed (throttled)")
            return [error] * len(keys)
        return [_key(owner, address)["pk"]["S"] in present for owner, address in keys]

    async def aclose(self) -> None:
        await self._lookups.aclose()
