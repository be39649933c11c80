"""The message status store: one record per message, written by the API and the workers.

The API writes ``queued`` (batched, a conditional TransactWriteItems) before it answers.
A worker claims the record before sending (a conditional update that takes an expiring lease), then
records ``sent`` with the provider's id, or ``retrying`` / ``failed`` / ``rejected``.
A redelivered message whose record says ``sent`` is not sent again.
"""

from __future__ import annotations

import asyncio
import contextlib
import time
import uuid
from collections.abc import Sequence
from dataclasses import dataclass, replace
from enum import Enum
from typing import Any

from opentelemetry import propagate

from ..batching import Batcher
from ..schema import QueuedMail
from .records import MessageRecord, Status, message_key
from .table import ConditionFailed, DynamoTable, StoreUnavailable, Update

__all__ = ["Claim", "ClaimOutcome", "MessageStore"]

# BatchWriteItem takes at most 25 puts per call.
BATCH_WRITE_LIMIT = 25
# Unprocessed items (throttling) are written again this many times before giving up.
_UNPROCESSED_RETRIES = 3
MAX_ERROR_TEXT = 500
# A record in one of these states may be claimed by a worker. `failed` and `rejected`
# are included so that an operator's redrive from the dead-letter queue sends again.
_CLAIMABLE = (Status.QUEUED, Status.RETRYING, Status.FAILED, Status.REJECTED)


def _current_traceparent() -> str | None:
    carrier: dict[str, str] = {}
    propagate.inject(carrier)
    return carrier.get("traceparent")


class ClaimOutcome(Enum):
    CLAIMED = "claimed"
    ALREADY_SENT = "already_sent"
    BUSY = "busy"


@dataclass(frozen=True)
class Claim:
    outcome: ClaimOutcome
    message_id: str
    token: str | None = None
    attempts: int = 0
    # For BUSY: seconds until the other holder's lease runs out.
    busy_for: float = 0.0
    # For CLAIMED: the record as the claim left it, the base of the `sent` record.
    record: MessageRecord | None = None


class MessageStore:
    def __init__(self, table: DynamoTable, *, ttl_days: int, max_in_flight: int = 4) -> None:
        self.table = table
        self.ttl_seconds = ttl_days * 86_400
        self._writer: Batcher[dict[str, Any], None] = Batcher(
            self._put_batch, max_items=BATCH_WRITE_LIMIT, max_in_flight=max_in_flight
        )
        self._queued_writer: Batcher[dict[str, Any], None] = Batcher(
            self._put_queued, max_items=BATCH_WRITE_LIMIT, max_in_flight=max_in_flight
        )

    def expiry(self, created_at: float) -> int:
        """The TTL attribute: DynamoDB deletes the record some time after this epoch second."""
        return int(created_at) + self.ttl_seconds

    def queued_record(self, mail: QueuedMail, suppressed: Sequence[str] = ()) -> MessageRecord:
        due_at = mail.mail.due_at
        scheduled = due_at is not None and due_at > mail.submitted_at
        return MessageRecord(
            id=mail.id,
            owner=mail.owner,
            status=Status.SCHEDULED if scheduled else Status.QUEUED,
            recipients=mail.mail.recipient_count,
            stream=mail.stream,
            created_at=mail.submitted_at,
            updated_at=mail.submitted_at,
            expires_at=self.expiry(mail.submitted_at),
            suppressed=tuple(suppressed),
            traceparent=_current_traceparent(),
        )

    # -- the API's side -----------------------------------------------------------------

    async def record_queued(self, mail: QueuedMail, suppressed: Sequence[str] = ()) -> None:
        """Write ``queued``, sharing a TransactWriteItems with concurrent requests.

        Conditional: a ``queued`` that arrives late (a slow or repeated request) never
        replaces a later status a worker wrote.
        """
        await self._queued_writer.submit(self.queued_record(mail, suppressed).to_item())

    async def record_queued_if_absent(
        self, mail: QueuedMail, suppressed: Sequence[str] = ()
    ) -> bool:
        """Write ``queued`` unless a record exists (a retried request reusing its id)."""
        try:
            await self.table.put_if(
                self.queued_record(mail, suppressed).to_item(), "attribute_not_exists(pk)"
            )
        except ConditionFailed:
            return False
        return True

    async def forget(self, message_id: str) -> None:
        """Remove a ``queued`` (or ``scheduled``) record whose message never reached the queue."""
        with contextlib.suppress(ConditionFailed):
            await self.table.call(
                "delete_item",
                lambda client, table: client.delete_item(
                    TableName=table,
                    Key={"pk": {"S": message_key(message_id)}},
                    ConditionExpression="#status IN (:queued, :scheduled)",
                    ExpressionAttributeNames={"#status": "status"},
                    ExpressionAttributeValues={
                        ":queued": {"S": Status.QUEUED.value},
                        ":scheduled": {"S": Status.SCHEDULED.value},
                    },
                ),
            )

    async def get(self, message_id: str) -> MessageRecord | None:
        # Consistent: a client that GETs right after its POST must see `queued`.
        response = await self.table.call(
            "get_item",
            lambda client, table: client.get_item(
                TableName=table, Key={"pk": {"S": message_key(message_id)}}, ConsistentRead=True
            ),
        )
        item = response.get("Item")
        return MessageRecord.from_item(item) if item else None

    async def _put_queued(self, items: Sequence[dict[str, Any]]) -> list[BaseException | None]:
        condition = "attribute_not_exists(pk) OR #status = :queued"
        names = {"#status": "status"}
        values = {":queued": {"S": Status.QUEUED.value}}
        if await self.table.put_all_if(list(items), condition, names, values):
            return [None] * len(items)
        # Cancelled: one of them already has a later status (or a conflict). One by one,
        # the ones that may be written are, and a later status is left as it is.

        async def one(item: dict[str, Any]) -> BaseException | None:
            try:
                await self.table.put_if(item, condition, names=names, values=values)
            except ConditionFailed:
                return None
            except StoreUnavailable as error:
                return error
            return None

        return list(await asyncio.gather(*(one(item) for item in items)))

    async def _put_batch(self, items: Sequence[dict[str, Any]]) -> list[BaseException | None]:
        results: list[BaseException | None] = [None] * len(items)
        pending = list(enumerate(items))
        for attempt in range(_UNPROCESSED_RETRIES + 1):
            response = await self.table.batch_put([item for _, item in pending])
            unprocessed = response.get("UnprocessedItems", {}).get(self.table.name, [])
            if not unprocessed:
                return results
            left = {entry["PutRequest"]["Item"]["pk"]["S"] for entry in unprocessed}
            pending = [(index, item) for index, item in pending if item["pk"]["S"] in left]
            if attempt < _UNPROCESSED_RETRIES:
                await asyncio.sleep(0.025 * 2**attempt)
        for index, _ in pending:
            results[index] = StoreUnavailable("DynamoDB left the write unprocessed (throttled)")
        return results

    # -- the worker's side --------------------------------------------------------------

    async def claim(self, mail: QueuedMail, *, provider: str, lease_seconds: float) -> Claim:
        """Take the message for sending, or learn that it is sent or being sent elsewhere.

        Creates the record when it is missing (a message queued while tracking was off).
        """
        now = time.time()
        token = uuid.uuid4().hex
        update = (
            Update()
            .set("status", Status.SENDING.value)
            .set("lease_until", now + lease_seconds)
            .set("lease_token", token)
            .set("provider", provider)
            .set("updated_at", now)
            .increment("attempts")
            .set("id", mail.id, if_absent=True)
            .set("owner", mail.owner, if_absent=True)
            .set("stream", mail.stream, if_absent=True)
            .set("created_at", mail.submitted_at, if_absent=True)
            .set("recipients", mail.mail.recipient_count, if_absent=True)
            .set("expires_at", self.expiry(mail.submitted_at), if_absent=True)
        )
        status, lease = update.name("status"), update.name("lease_until")
        claimable = ", ".join(update.value(s.value) for s in _CLAIMABLE)
        sending, expired = update.value(Status.SENDING.value), update.value(now)
        condition = (
            f"attribute_not_exists(pk) OR {status} IN ({claimable}) "
            f"OR ({status} = {sending} AND {lease} < {expired})"
        )
        try:
            response = await self.table.update(
                {"pk": {"S": message_key(mail.id)}},
                update,
                condition,
                return_old=True,
                return_new=True,
            )
        except ConditionFailed as refused:
            return self._refused(mail.id, refused.item, now)
        record = MessageRecord.from_item(response["Attributes"])
        return Claim(
            ClaimOutcome.CLAIMED, mail.id, token=token, attempts=record.attempts, record=record
        )

    def _refused(self, message_id: str, item: dict[str, Any] | None, now: float) -> Claim:
        if item is not None and item.get("status", {}).get("S") == Status.SENT.value:
            return Claim(ClaimOutcome.ALREADY_SENT, message_id)
        lease_until = float(item["lease_until"]["N"]) if item and "lease_until" in item else now
        return Claim(ClaimOutcome.BUSY, message_id, busy_for=max(0.0, lease_until - now))

    async def mark_sent(self, claim: Claim, *, provider: str, provider_message_id: str) -> None:
        """Replace the claimed record by the `sent` one, sharing a BatchWriteItem with
        concurrent sends: one call per message (the claim) is all a send costs alone.

        Unconditional: the provider accepted, so `sent` is true whoever holds the lease;
        the put also drops the lease.
        """
        if claim.record is None:
            raise ValueError("only a CLAIMED claim can be marked sent")
        now = time.time()
        sent = replace(
            claim.record,
            status=Status.SENT,
            provider=provider,
            provider_message_id=provider_message_id,
            sent_at=now,
            updated_at=now,
        )
        await self._writer.submit(sent.to_item())

    async def mark_unsent(self, claim: Claim, status: Status, error: str) -> None:
        """``retrying``, ``failed`` or ``rejected``: only while this worker holds the lease,
        so a stale worker can never overwrite another's ``sent``."""
        if status not in (Status.RETRYING, Status.FAILED, Status.REJECTED):
            raise ValueError(f"{status} is not an unsent outcome")
        update = (
            Update()
            .set("status", status.value)
            .set("last_error", error[:MAX_ERROR_TEXT])
            .set("updated_at", time.time())
            .remove("lease_until", "lease_token")
        )
        condition = f"{update.name('lease_token')} = {update.value(claim.token or '')}"
        with contextlib.suppress(ConditionFailed):
            await self.table.update({"pk": {"S": message_key(claim.message_id)}}, update, condition)

    async def aclose(self) -> None:
        """Write everything already submitted, then stop taking writes."""
        await self._queued_writer.aclose()
        await self._writer.aclose()
