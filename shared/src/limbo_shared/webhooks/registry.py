"""Webhook endpoints per API key, and the last attempts per endpoint, in the status table.

The table has one key (``pk``) and no index, so an API key's endpoints live in one item
(``hooks#<owner>``, at most :data:`MAX_ENDPOINTS`), read with one call by the API's
list, the notifier and the delivery worker alike. Writes are read-modify-write guarded
by a version number, so two concurrent changes cannot lose one another.

Signing secrets are stored here because the worker must sign with them (HMAC needs the
key itself); they leave the table only to sign, and in the one answer that creates or
rotates them. :meth:`Endpoint.public` never includes them.

Attempts live in a second item per endpoint (``hookattempts#<id>``): the worker writes
it on every attempt, and the endpoint item stays small and rarely written.
"""

from __future__ import annotations

import base64
import json
import secrets
import time
import uuid
from collections.abc import Callable
from dataclasses import asdict, dataclass, field, replace
from typing import Any

from ..store.table import ConditionFailed, DynamoTable
from .events import EventType, iso_time

__all__ = [
    "MAX_ATTEMPTS_KEPT",
    "MAX_ENDPOINTS",
    "ROTATION_GRACE_SECONDS",
    "Attempt",
    "AttemptLog",
    "Endpoint",
    "EndpointRegistry",
    "TooManyEndpoints",
    "new_secret",
]

MAX_ENDPOINTS = 10
MAX_ATTEMPTS_KEPT = 20
# After a rotation the old secret signs too (a second `v1,` signature) for this long, so
# a receiver can switch secrets without refusing webhooks in between.
ROTATION_GRACE_SECONDS = 24 * 3600
_WRITE_ATTEMPTS = 5


class TooManyEndpoints(Exception):
    pass


def new_secret() -> str:
    """``whsec_`` and 32 random bytes in base64: what Standard Webhooks libraries take."""
    return "whsec_" + base64.b64encode(secrets.token_bytes(32)).decode()


@dataclass(frozen=True)
class Endpoint:
    id: str
    url: str
    events: tuple[EventType, ...]
    secret: str
    created_at: float
    previous_secret: str | None = None
    previous_until: float | None = None
    disabled_at: float | None = None
    disabled_reason: str | None = None

    @property
    def enabled(self) -> bool:
        return self.disabled_at is None

    def wants(self, event: EventType) -> bool:
        return self.enabled and event in self.events

    def signing_secrets(self, now: float) -> list[str]:
        keys = [self.secret]
        if self.previous_secret and self.previous_until and now < self.previous_until:
            keys.append(self.previous_secret)
        return keys

    def public(self) -> dict[str, Any]:
        """What the owner sees: everything but the secrets."""
        return {
            "id": self.id,
            "url": self.url,
            "events": [event.value for event in self.events],
            "enabled": self.enabled,
            "disabled_at": iso_time(self.disabled_at) if self.disabled_at else None,
            "disabled_reason": self.disabled_reason,
            "created_at": iso_time(self.created_at),
        }

    def to_json(self) -> dict[str, Any]:
        raw = asdict(self)
        raw["events"] = [event.value for event in self.events]
        return raw

    @classmethod
    def from_json(cls, raw: dict[str, Any]) -> Endpoint:
        return cls(**{**raw, "events": tuple(EventType(e) for e in raw["events"])})


@dataclass(frozen=True)
class Attempt:
    at: float
    status_code: int | None  # None: no HTTP answer (refused, timeout, blocked)
    latency_ms: float
    outcome: str  # "ok", "http_error", "timeout", "connect_error", "blocked", ...
    webhook_id: str

    def public(self) -> dict[str, Any]:
        return {**asdict(self), "at": iso_time(self.at), "latency_ms": round(self.latency_ms, 1)}


@dataclass(frozen=True)
class AttemptLog:
    """The last attempts (newest first) and since when the endpoint has been failing."""

    attempts: tuple[Attempt, ...] = ()
    failing_since: float | None = None
    version: int = 0

    def public(self) -> dict[str, Any]:
        return {
            "attempts": [attempt.public() for attempt in self.attempts],
            "failing_since": iso_time(self.failing_since) if self.failing_since else None,
        }


@dataclass
class _Item:
    endpoints: list[Endpoint] = field(default_factory=list)
    version: int = 0


def _hooks_key(owner: str) -> dict[str, Any]:
    return {"pk": {"S": f"hooks#{owner}"}}


def _attempts_key(endpoint_id: str) -> dict[str, Any]:
    return {"pk": {"S": f"hookattempts#{endpoint_id}"}}


class EndpointRegistry:
    def __init__(self, table: DynamoTable) -> None:
        self.table = table

    # -- endpoints ---------------------------------------------------------------------

    async def of_owner(self, owner: str) -> list[Endpoint]:
        return (await self._read(owner)).endpoints

    async def get(self, owner: str, endpoint_id: str) -> Endpoint | None:
        return next((e for e in await self.of_owner(owner) if e.id == endpoint_id), None)

    async def create(self, owner: str, url: str, events: tuple[EventType, ...]) -> Endpoint:
        endpoint = Endpoint(
            id=f"ep_{uuid.uuid4().hex}",
            url=url,
            events=events,
            secret=new_secret(),
            created_at=time.time(),
        )

        def add(endpoints: list[Endpoint]) -> list[Endpoint]:
            if len(endpoints) >= MAX_ENDPOINTS:
                raise TooManyEndpoints
            return [*endpoints, endpoint]

        await self._change(owner, add)
        return endpoint

    async def delete(self, owner: str, endpoint_id: str) -> bool:
        found = False

        def remove(endpoints: list[Endpoint]) -> list[Endpoint]:
            nonlocal found
            kept = [e for e in endpoints if e.id != endpoint_id]
            found = len(kept) < len(endpoints)
            return kept

        await self._change(owner, remove)
        if found:
            key = _attempts_key(endpoint_id)
            await self.table.call(
                "delete_item", lambda client, table: client.delete_item(TableName=table, Key=key)
            )
        return found

    async def rotate(self, owner: str, endpoint_id: str) -> Endpoint | None:
        """A new secret; the old one keeps signing alongside for ROTATION_GRACE_SECONDS."""
        return await self._update(
            owner,
            endpoint_id,
            lambda e: replace(
                e,
                secret=new_secret(),
                previous_secret=e.secret,
                previous_until=time.time() + ROTATION_GRACE_SECONDS,
            ),
        )

    async def disable(self, owner: str, endpoint_id: str, reason: str) -> Endpoint | None:
        return await self._update(
            owner,
            endpoint_id,
            lambda e: (
                e if not e.enabled else replace(e, disabled_at=time.time(), disabled_reason=reason)
            ),
        )

    async def _update(
        self, owner: str, endpoint_id: str, change: Callable[[Endpoint], Endpoint]
    ) -> Endpoint | None:
        changed: Endpoint | None = None

        def apply(endpoints: list[Endpoint]) -> list[Endpoint]:
            nonlocal changed
            result = []
            for endpoint in endpoints:
                if endpoint.id == endpoint_id:
                    endpoint = changed = change(endpoint)
                result.append(endpoint)
            return result

        await self._change(owner, apply)
        return changed

    async def _get(self, key: dict[str, Any]) -> dict[str, Any] | None:
        response = await self.table.call(
            "get_item",
            lambda client, table: client.get_item(TableName=table, Key=key, ConsistentRead=True),
        )
        item = response.get("Item")
        return dict(item) if item else None

    async def _put(self, item: dict[str, Any], version: int) -> None:
        """Write ``item`` (at ``version + 1``) if the stored one is still at ``version``."""
        item = {**item, "version": {"N": str(version + 1)}}
        if version == 0:
            await self.table.put_if(item, "attribute_not_exists(pk)")
            return
        await self.table.put_if(
            item, "version = :version", values={":version": {"N": str(version)}}
        )

    async def _read(self, owner: str) -> _Item:
        item = await self._get(_hooks_key(owner))
        if not item:
            return _Item()
        endpoints = [Endpoint.from_json(raw) for raw in json.loads(item["endpoints"]["S"])]
        return _Item(endpoints, int(item["version"]["N"]))

    async def _change(self, owner: str, change: Callable[[list[Endpoint]], list[Endpoint]]) -> None:
        for _ in range(_WRITE_ATTEMPTS):
            current = await self._read(owner)
            endpoints = change(list(current.endpoints))
            try:
                await self._write(owner, endpoints, current.version)
                return
            except ConditionFailed:
                continue  # someone else changed it in between: apply ours to theirs
        raise ConditionFailed(None)

    async def _write(self, owner: str, endpoints: list[Endpoint], version: int) -> None:
        endpoints_json = json.dumps([e.to_json() for e in endpoints])
        await self._put({**_hooks_key(owner), "endpoints": {"S": endpoints_json}}, version)

    # -- attempts ----------------------------------------------------------------------

    async def attempts(self, endpoint_id: str) -> AttemptLog:
        item = await self._get(_attempts_key(endpoint_id))
        if not item:
            return AttemptLog()
        raw = json.loads(item["log"]["S"])
        return AttemptLog(
            attempts=tuple(Attempt(**a) for a in raw["attempts"]),
            failing_since=raw["failing_since"],
            version=int(item["version"]["N"]),
        )

    async def record_attempt(self, endpoint_id: str, attempt: Attempt) -> AttemptLog:
        """Add ``attempt`` (keeping the last MAX_ATTEMPTS_KEPT); a success clears
        ``failing_since``, the first failure after one sets it."""
        for _ in range(_WRITE_ATTEMPTS):
            current = await self.attempts(endpoint_id)
            ok = attempt.outcome == "ok"
            failing_since = None if ok else (current.failing_since or attempt.at)
            log = AttemptLog(
                attempts=(attempt, *current.attempts)[:MAX_ATTEMPTS_KEPT],
                failing_since=failing_since,
                version=current.version + 1,
            )
            body = {
                "attempts": [asdict(a) for a in log.attempts],
                "failing_since": log.failing_since,
            }
            item = {**_attempts_key(endpoint_id), "log": {"S": json.dumps(body)}}
            try:
                await self._put(item, current.version)
            except ConditionFailed:
                continue
            return log
        raise ConditionFailed(None)
