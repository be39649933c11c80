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

from starlette.responses import JSONResponse, Response

from limbo_shared.http import problem
from limbo_shared.logs import get_logger
from limbo_shared.schema import MailRequest, QueuedMail
from limbo_shared.store import (
    DeliveryOutcomes,
    IdempotencyKeys,
    MessageRecord,
    MessageStore,
    RecipientOutcome,
    ReservationOutcome,
    StoreUnavailable,
    Suppressions,
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


def _unavailable() -> Response:
    return problem(
        503, "the status store is unavailable; retry later", headers={"Retry-After": "5"}
    )


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
        self, owner: str, key: str | None, mail: MailRequest, message_id: str
    ) -> Ticket | Response:
        """A ticket to go ahead with, or the answer to give instead (replay, 409...).

        The ticket carries ``message_id`` unless a repeat takes over an earlier id.
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
                    {"Message": "submitted", "id": reservation.message_id},
                    headers={"Idempotent-Replayed": "true"},
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
        self, ticket: Ticket, envelope: QueuedMail, suppressed: Sequence[str] = ()
    ) -> AsyncIterator[None]:
        """Write `queued` before the body runs (the publish); settle the key after it.

        Raises StoreUnavailable when `queued` cannot be written: the message is then not
        published, so a tracked deployment never has mail it cannot account for.
        """
        if self.store is None:
            yield
            return
        try:
            if ticket.takeover:
                await self.store.record_queued_if_absent(envelope, suppressed)
            else:
                await self.store.record_queued(envelope, suppressed)
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
            record, outcomes = await asyncio.gather(
                self.store.get(message_id), self._outcomes(message_id)
            )
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
        return JSONResponse(public_status(record, outcomes))

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


def public_status(record: MessageRecord, outcomes: list[RecipientOutcome]) -> dict[str, object]:
    """The record as GET answers it, with each recipient's delivery outcome.

    Once the provider reported back, ``status`` is the furthest outcome among the
    recipients (``delivered``, ``bounced``...); ``delivery`` has each one.
    """
    answer = record.public()
    answer["delivery"] = [outcome.public() for outcome in outcomes]
    if outcomes:
        answer["status"] = max(outcomes, key=lambda outcome: outcome.precedence).outcome
    return answer
