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
from collections.abc import AsyncIterator, Sequence
from contextlib import asynccontextmanager
from dataclasses import dataclass
from enum import Enum
from typing import Any

from limbo_shared.logs import get_logger
from limbo_shared.schema import MailRequest, QueuedMail
from limbo_shared.store import (
    CancelOutcome,
    DeliveryOutcomes,
    IdempotencyKeys,
    MessageRecord,
    MessageStore,
    RecipientOutcome,
    ReservationOutcome,
    ScheduleRecords,
    StoreUnavailable,
    Suppressions,
    open_table,
)

from .settings import ApiSettings

__all__ = [
    "IDEMPOTENCY_HEADER",
    "MAX_IDEMPOTENCY_KEY",
    "Canceled",
    "Ledger",
    "Refusal",
    "Replay",
    "Ticket",
    "TooLate",
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
    TOO_LATE = "too_late"  # a cancel of a message no longer scheduled


@dataclass(frozen=True)
class Canceled:
    """A scheduled message is now `canceled` and will not be sent."""

    message_id: str


@dataclass(frozen=True)
class TooLate:
    """A cancel of a message past `scheduled`: its status says where it is."""

    status: str


def fingerprint(mail: MailRequest | Sequence[MailRequest]) -> str:
    # The validated request (or batch), canonically serialised: whitespace or key order
    # in the body does not make "the same body" different.
    if isinstance(mail, MailRequest):
        data: Any = mail.model_dump(mode="json", by_alias=True)
    else:
        data = [one.model_dump(mode="json", by_alias=True) for one in mail]
    canonical = json.dumps(
        data,
        sort_keys=True,
        separators=(",", ":"),
        ensure_ascii=False,
    )
    return hashlib.sha256(canonical.encode("utf-8", "surrogatepass")).hexdigest()


class Ledger:
    def __init__(
        self,
        store: MessageStore | None,
        keys: IdempotencyKeys | None,
        *,
        lease_seconds: float,
        outcomes: DeliveryOutcomes | None = None,
        suppressions: Suppressions | None = None,
    ) -> None:
        self.store = store
        self.keys = keys
        self.lease_seconds = lease_seconds
        self.outcomes = outcomes
        self.suppressions = suppressions

    async def begin(
        self,
        owner: str,
        key: str | None,
        mail: MailRequest | Sequence[MailRequest],
        message_id: str,
    ) -> Ticket | Replay | Refusal:
        """A ticket to go ahead with, a replay of an earlier answer, or a refusal.

        The ticket carries ``message_id`` unless a repeat takes over an earlier id; a
        batch passes its emails and its batch id (the message ids derive from it).
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
    async def recording(
        self,
        ticket: Ticket,
        envelopes: Sequence[QueuedMail],
        suppressed: Sequence[Sequence[str]] = (),
    ) -> AsyncIterator[None]:
        """Write `queued` (or `scheduled`) before the body runs (the publish); settle the
        key after it. A batch's records share BatchWriteItem calls (25 a call).
        `suppressed` names, per envelope (in order), the To addresses left out.

        Raises StoreUnavailable when a record cannot be written: the messages are then
        not published, so a tracked deployment never has mail it cannot account for.
        """
        if self.store is None:
            yield
            return
        store = self.store
        write = store.record_queued_if_absent if ticket.takeover else store.record_queued
        left_out = list(suppressed) + [()] * (len(envelopes) - len(suppressed))
        results = await asyncio.gather(
            *(write(envelope, out) for envelope, out in zip(envelopes, left_out, strict=True)),
            return_exceptions=True,
        )
        failure = next((r for r in results if isinstance(r, BaseException)), None)
        if failure is not None:
            await self._forget_all(ticket, envelopes)
            await self._abandon(ticket)
            raise failure
        try:
            yield
        except BaseException:
            await asyncio.shield(self._forget_all(ticket, envelopes))
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

    async def _forget_all(self, ticket: Ticket, envelopes: Sequence[QueuedMail]) -> None:
        if ticket.idempotency_key is not None:
            return  # a repeat reuses these ids and their records
        # No repeat will reuse these ids; a message that did reach the queue after all
        # gets its record back from the worker's claim.
        await asyncio.gather(*(self._forget(envelope.id) for envelope in envelopes))

    async def cancel(self, owner: str, message_id: str) -> Canceled | TooLate | Refusal:
        """``DELETE /v1/mail/{id}``: a scheduled message becomes `canceled`."""
        if (refusal := self._unknowable(message_id)) is not None:
            return refusal
        assert self.store is not None
        try:
            cancellation = await ScheduleRecords(self.store.table).cancel(message_id, owner)
        except StoreUnavailable as error:
            log.warning("cancel failed", error=str(error))
            return Refusal.UNAVAILABLE
        match cancellation.outcome:
            case CancelOutcome.CANCELED:
                return Canceled(message_id)
            case CancelOutcome.NOT_FOUND:
                return Refusal.NOT_FOUND
            case CancelOutcome.TOO_LATE:
                return TooLate(cancellation.status.value if cancellation.status else "unknown")

    def _unknowable(self, message_id: str) -> Refusal | None:
        """Why no record can be asked for ``message_id``: no store, or not one of limbo's
        ids (answered like an unknown one, without a call)."""
        if self.store is None:
            return Refusal.TRACKING_OFF
        try:
            uuid.UUID(message_id)
        except ValueError:
            return Refusal.NOT_FOUND
        return None

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

    async def lookup(self, owner: str, message_id: str) -> MessageStatus | Refusal:
        """The message's record, or why there is none to show this owner."""
        if (refusal := self._unknowable(message_id)) is not None:
            return refusal
        assert self.store is not None
        try:
            record, outcomes = await asyncio.gather(
                self.store.get(message_id), self._outcomes(message_id)
            )
        except StoreUnavailable as error:
            log.warning("status lookup failed", error=str(error))
            return Refusal.UNAVAILABLE
        # Another key's message is answered exactly like an unknown one.
        if record is None or record.owner != owner:
            return Refusal.NOT_FOUND
        return MessageStatus(record, outcomes)

    async def _outcomes(self, message_id: str) -> list[RecipientOutcome]:
        return [] if self.outcomes is None else await self.outcomes.get(message_id)

    async def aclose(self) -> None:
        if self.suppressions is not None:
            await self.suppressions.aclose()
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
    return Ledger(
        store,
        IdempotencyKeys(table),
        lease_seconds=lease,
        outcomes=DeliveryOutcomes(table, ttl_days=settings.status_ttl_days),
        suppressions=Suppressions(table, max_in_flight=settings.publish_concurrency),
    )


@dataclass(frozen=True)
class MessageStatus:
    """A message's record and each recipient's delivery outcome so far."""

    record: MessageRecord
    outcomes: list[RecipientOutcome]

    def public(self) -> dict[str, object]:
        """The status as GET answers it.

        Once the provider reported back, ``status`` is the furthest outcome among the
        recipients (``delivered``, ``bounced``...); ``delivery`` has each one.
        """
        answer = self.record.public()
        answer["delivery"] = [outcome.public() for outcome in self.outcomes]
        if self.outcomes:
            answer["status"] = max(self.outcomes, key=lambda outcome: outcome.precedence).outcome
        return answer
