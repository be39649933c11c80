"""The API's side of message tracking: idempotency keys, the `queued` record, lookups.

With tracking off (no STATUS_TABLE) every request gets a fresh id and nothing is
written; an Idempotency-Key is then refused rather than silently ignored, because a
client sending one relies on it.
"""

from __future__ import annotations

import asyncio
import hashlib
import json
import uuid
from collections.abc import AsyncIterator
from contextlib import asynccontextmanager
from dataclasses import dataclass
from enum import Enum

from limbo_shared.logs import get_logger
from limbo_shared.schema import MailRequest, QueuedMail
from limbo_shared.store import (
    IdempotencyKeys,
    MessageRecord,
    MessageStore,
    ReservationOutcome,
    StoreUnavailable,
    open_table,
)

from .settings import ApiSettings

__all__ = [
    "IDEMPOTENCY_HEADER",
    "MAX_IDEMPOTENCY_KEY",
    "Ledger",
    "Refusal",
    "Replay",
    "Ticket",
    "open_ledger",
]

log = get_logger("limbo.api")

IDEMPOTENCY_HEADER = "Idempotency-Key"
MAX_IDEMPOTENCY_KEY = 256


@dataclass(frozen=True)
class Ticket:
    """The go-ahead for one submission: its message id, and the key it is bound to."""

    message_id: str
    owner: str
    idempotency_key: str | None = None
    # A repeat taking over from a request that died: its record may already exist.
    takeover: bool = False


@dataclass(frozen=True)
class Replay:
    """A repeat of a request that was queued: answer what it was answered."""

    message_id: str


class Refusal(Enum):
    """Why the ledger cannot let a request go ahead (answers.py says it in HTTP)."""

    BAD_KEY = "bad_key"  # the Idempotency-Key is empty or too long
    TRACKING_OFF = "tracking_off"  # no STATUS_TABLE: keys and lookups cannot be honoured
    UNAVAILABLE = "unavailable"  # the status store did not answer
    CONFLICT = "conflict"  # the key was used with another body
    IN_PROGRESS = "in_progress"  # the key's first request is still running
    NOT_FOUND = "not_found"  # no such message for this owner


def fingerprint(mail: MailRequest) -> str:
    # The validated request, canonically serialised: whitespace or key order in the body
    # does not make "the same body" different.
    canonical = json.dumps(
        mail.model_dump(mode="json", by_alias=True),
        sort_keys=True,
        separators=(",", ":"),
        ensure_ascii=False,
    )
    return hashlib.sha256(canonical.encode("utf-8", "surrogatepass")).hexdigest()


class Ledger:
    def __init__(
        self, store: MessageStore | None, keys: IdempotencyKeys | None, *, lease_seconds: float
    ) -> None:
        self.store = store
        self.keys = keys
        self.lease_seconds = lease_seconds

    async def begin(
        self, owner: str, key: str | None, mail: MailRequest, message_id: str
    ) -> Ticket | Replay | Refusal:
        """A ticket to go ahead with, a replay of an earlier answer, or a refusal.

        The ticket carries ``message_id`` unless a repeat takes over an earlier id.
        """
        if key is None:
            return Ticket(message_id, owner)
        if not key or len(key) > MAX_IDEMPOTENCY_KEY:
            return Refusal.BAD_KEY
        if self.keys is None:
            return Refusal.TRACKING_OFF
        try:
            reservation = await self.keys.reserve(
                owner,
                key,
                fingerprint=fingerprint(mail),
                message_id=message_id,
                lease_seconds=self.lease_seconds,
            )
        except StoreUnavailable as error:
            log.warning("idempotency key not checked", error=str(error))
            return Refusal.UNAVAILABLE
        match reservation.outcome:
            case ReservationOutcome.NEW | ReservationOutcome.TAKEOVER:
                return Ticket(
                    reservation.message_id,
                    owner,
                    key,
                    takeover=reservation.outcome is ReservationOutcome.TAKEOVER,
                )
            case ReservationOutcome.REPLAY:
                return Replay(reservation.message_id)
            case ReservationOutcome.CONFLICT:
                return Refusal.CONFLICT
            case ReservationOutcome.IN_PROGRESS:
                return Refusal.IN_PROGRESS

    @asynccontextmanager
    async def recording(self, ticket: Ticket, envelope: QueuedMail) -> AsyncIterator[None]:
        """Write `queued` before the body runs (the publish); settle the key after it.

        Raises StoreUnavailable when `queued` cannot be written: the message is then not
        published, so a tracked deployment never has mail it cannot account for.
        """
        if self.store is None:
            yield
            return
        try:
            if ticket.takeover:
                await self.store.record_queued_if_absent(envelope)
            else:
                await self.store.record_queued(envelope)
        except StoreUnavailable:
            await self._abandon(ticket)
            raise
        try:
            yield
        except BaseException:
            if ticket.idempotency_key is None:
                # No repeat will reuse this id; a message that did reach the queue after all
                # gets its record back from the worker's claim.
                await asyncio.shield(self._forget(ticket.message_id))
            await asyncio.shield(self._abandon(ticket))
            raise
        if ticket.idempotency_key is not None:
            assert self.keys is not None
            try:
                await self.keys.complete(ticket.owner, ticket.idempotency_key, ticket.message_id)
            except StoreUnavailable as error:
                # Repeats see "in progress" until the lease ends, then take over the same id:
                # SQS deduplication and the worker's claim keep that from sending twice.
                log.warning("idempotency key not completed", error=str(error))

    async def _forget(self, message_id: str) -> None:
        assert self.store is not None
        try:
            await self.store.forget(message_id)
        except StoreUnavailable as error:
            log.warning("could not remove the record of an unqueued message", error=str(error))

    async def _abandon(self, ticket: Ticket) -> None:
        if ticket.idempotency_key is None or self.keys is None:
            return
        try:
            await self.keys.abandon(ticket.owner, ticket.idempotency_key, ticket.message_id)
        except StoreUnavailable as error:
            log.warning(
                "idempotency key not released; it frees itself when its lease ends",
                error=str(error),
            )

    async def lookup(self, owner: str, message_id: str) -> MessageRecord | Refusal:
        """The message's record, or why there is none to show this owner."""
        if self.store is None:
            return Refusal.TRACKING_OFF
        try:
            uuid.UUID(message_id)
        except ValueError:
            return Refusal.NOT_FOUND
        try:
            record = await self.store.get(message_id)
        except StoreUnavailable as error:
            log.warning("status lookup failed", error=str(error))
            return Refusal.UNAVAILABLE
        # Another key's message is answered exactly like an unknown one.
        if record is None or record.owner != owner:
            return Refusal.NOT_FOUND
        return record

    async def aclose(self) -> None:
        if self.store is not None:
            await self.store.aclose()
            self.store.table.close()


def open_ledger(settings: ApiSettings) -> Ledger:
    """The ledger the settings ask for: on DynamoDB with STATUS_TABLE, else tracking off."""
    # A pending idempotency key outlives the slowest publish before a repeat may take over.
    lease = settings.publish_timeout + 10
    if settings.status_table is None:
        return Ledger(None, None, lease_seconds=lease)
    table = open_table(
        settings.status_table,
        region=settings.region,
        endpoint_url=settings.aws_endpoint_url,
        threads=settings.publish_concurrency + 8,
    )
    store = MessageStore(
        table, ttl_days=settings.status_ttl_days, max_in_flight=settings.publish_concurrency
    )
    return Ledger(store, IdempotencyKeys(table), lease_seconds=lease)
