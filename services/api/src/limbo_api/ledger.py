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
from collections.abc import AsyncIterator, Callable, Sequence
from contextlib import asynccontextmanager
from dataclasses import dataclass
from typing import Any

from starlette.responses import JSONResponse, Response

from limbo_shared.http import problem
from limbo_shared.logs import get_logger
from limbo_shared.schema import MailRequest, QueuedMail
from limbo_shared.store import (
    CancelOutcome,
    IdempotencyKeys,
    MessageStore,
    ReservationOutcome,
    ScheduleRecords,
    StoreUnavailable,
    open_table,
)

from .settings import ApiSettings

__all__ = ["IDEMPOTENCY_HEADER", "MAX_IDEMPOTENCY_KEY", "Ledger", "Ticket", "open_ledger"]

log = get_logger("limbo.api")

IDEMPOTENCY_HEADER = "Idempotency-Key"
MAX_IDEMPOTENCY_KEY = 256
_TRACKING_OFF = "message tracking is off on this deployment (STATUS_TABLE is unset)"


@dataclass(frozen=True)
class Ticket:
    """The go-ahead for one submission: its message id, and the key it is bound to."""

    message_id: str
    owner: str
    idempotency_key: str | None = None
    # A repeat taking over from a request that died: its record may already exist.
    takeover: bool = False


def fingerprint(mail: MailRequest | Sequence[MailRequest]) -> str:
    # The validated request, canonically serialised: whitespace or key order in the body
    # does not make "the same body" different.
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


def _submitted(message_id: str) -> dict[str, Any]:
    return {"Message": "submitted", "id": message_id}


def _unavailable() -> Response:
    return problem(
        503, "the status store is unavailable; retry later", headers={"Retry-After": "5"}
    )


class Ledger:
    def __init__(
        self, store: MessageStore | None, keys: IdempotencyKeys | None, *, lease_seconds: float
    ) -> None:
        self.store = store
        self.keys = keys
        self.lease_seconds = lease_seconds

    async def begin(
        self,
        owner: str,
        key: str | None,
        mail: MailRequest | Sequence[MailRequest],
        message_id: str,
        replay: Callable[[str], dict[str, Any]] = _submitted,
    ) -> Ticket | Response:
        """A ticket to go ahead with, or the answer to give instead (replay, 409...).

        The ticket carries ``message_id`` unless a repeat takes over an earlier id; a
        batch passes its batch id, and ``replay`` turns the stored id into the answer.
        """
        if key is None:
            return Ticket(message_id, owner)
        if not key or len(key) > MAX_IDEMPOTENCY_KEY:
            return problem(
                400, f"{IDEMPOTENCY_HEADER} must be 1 to {MAX_IDEMPOTENCY_KEY} characters"
            )
        if self.keys is None:
            return problem(501, f"{IDEMPOTENCY_HEADER} cannot be honoured: {_TRACKING_OFF}")
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
            return _unavailable()
        match reservation.outcome:
            case ReservationOutcome.NEW | ReservationOutcome.TAKEOVER:
                return Ticket(
                    reservation.message_id,
                    owner,
                    key,
                    takeover=reservation.outcome is ReservationOutcome.TAKEOVER,
                )
            case ReservationOutcome.REPLAY:
                return JSONResponse(
                    replay(reservation.message_id), headers={"Idempotent-Replayed": "true"}
                )
            case ReservationOutcome.CONFLICT:
                return problem(409, f"{IDEMPOTENCY_HEADER} was already used with a different body")
            case ReservationOutcome.IN_PROGRESS:
                return problem(
                    409,
                    f"a request with this {IDEMPOTENCY_HEADER} is still being "
                    "processed; retry later",
                    headers={"Retry-After": "1"},
                )

    @asynccontextmanager
    async def recording(
        self, ticket: Ticket, envelopes: Sequence[QueuedMail]
    ) -> AsyncIterator[None]:
        """Write `queued` (or `scheduled`) before the body runs (the publish); settle the
        key after it. A batch's records share BatchWriteItem calls (25 a call).

        Raises StoreUnavailable when a record cannot be written: the messages are then
        not published, so a tracked deployment never has mail it cannot account for.
        """
        if self.store is None:
            yield
            return
        store = self.store
        write = store.record_queued_if_absent if ticket.takeover else store.record_queued
        results = await asyncio.gather(
            *(write(envelope) for envelope in envelopes), return_exceptions=True
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

    async def cancel(self, owner: str, message_id: str) -> Response:
        """``DELETE /v1/mail/{id}``: a scheduled message becomes `canceled`."""
        if self.store is None:
            return problem(
                501, f"cancelling is not available: {_TRACKING_OFF}", message="not canceled"
            )
        not_found = problem(404, f"no message {message_id!r} for this API key", message="not found")
        try:
            uuid.UUID(message_id)
        except ValueError:
            return not_found
        try:
            cancellation = await ScheduleRecords(self.store.table).cancel(message_id, owner)
        except StoreUnavailable as error:
            log.warning("cancel failed", error=str(error))
            return problem(
                503,
                "the status store is unavailable; retry later",
                headers={"Retry-After": "5"},
                message="unavailable",
            )
        match cancellation.outcome:
            case CancelOutcome.CANCELED:
                return JSONResponse({"Message": "canceled", "id": message_id})
            case CancelOutcome.NOT_FOUND:
                return not_found
            case CancelOutcome.TOO_LATE:
                status = cancellation.status.value if cancellation.status else "unknown"
                return problem(
                    409,
                    f"message {message_id!r} is {status}: only a scheduled message can be canceled",
                    message="not canceled",
                )

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

    async def lookup(self, owner: str, message_id: str) -> Response:
        if self.store is None:
            return problem(
                501, f"status lookups are not available: {_TRACKING_OFF}", message="not found"
            )
        not_found = problem(404, f"no message {message_id!r} for this API key", message="not found")
        try:
            uuid.UUID(message_id)
        except ValueError:
            return not_found
        try:
            record = await self.store.get(message_id)
        except StoreUnavailable as error:
            log.warning("status lookup failed", error=str(error))
            return problem(
                503,
                "the status store is unavailable; retry later",
                headers={"Retry-After": "5"},
                message="unavailable",
            )
        # Another key's message is answered exactly like an unknown one.
        if record is None or record.owner != owner:
            return not_found
        return JSONResponse(record.public())

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
