"""The status store's part in scheduled send: cancel while scheduled, release when due.

Both are one conditional update on the message's record, so a cancel and the
scheduler's release cannot both win: whichever writes first decides, and the other
learns it from the refused condition.
"""

from __future__ import annotations

import time
from dataclasses import dataclass
from enum import Enum

from .records import Status, message_key
from .table import ConditionFailed, DynamoTable, Update

__all__ = ["CancelOutcome", "Cancellation", "ScheduleRecords"]


class CancelOutcome(Enum):
    CANCELED = "canceled"  # it was scheduled and now never will be sent
    NOT_FOUND = "not_found"  # no such message for this owner
    TOO_LATE = "too_late"  # already handed over for sending (or sent)


@dataclass(frozen=True)
class Cancellation:
    outcome: CancelOutcome
    status: Status | None = None


class ScheduleRecords:
    def __init__(self, table: DynamoTable) -> None:
        self.table = table

    async def cancel(self, message_id: str, owner: str) -> Cancellation:
        update = Update().set("status", Status.CANCELED.value).set("updated_at", time.time())
        condition = (
            f"{update.name('status')} IN ({update.value(Status.SCHEDULED.value)}, "
            f"{update.value(Status.CANCELED.value)}) "
            f"AND {update.name('owner')} = {update.value(owner)}"
        )
        try:
            await self.table.update(
                {"pk": {"S": message_key(message_id)}}, update, condition, return_old=True
            )
        except ConditionFailed as refused:
            item = refused.item
            # Another key's message is answered exactly like an unknown one.
            if item is None or item.get("owner", {}).get("S") != owner:
                return Cancellation(CancelOutcome.NOT_FOUND)
            return Cancellation(CancelOutcome.TOO_LATE, Status(item["status"]["S"]))
        return Cancellation(CancelOutcome.CANCELED, Status.CANCELED)

    async def release(self, message_id: str) -> bool:
        """``scheduled`` → ``queued`` when due; False only when it was canceled.

        A record already past ``scheduled`` means an earlier release got as far as the
        FIFO queue and crashed before deleting its schedule message: handing it over
        again is harmless (SQS deduplication, then the worker's claim).
        """
        update = Update().set("status", Status.QUEUED.value).set("updated_at", time.time())
        condition = f"{update.name('status')} = {update.value(Status.SCHEDULED.value)}"
        try:
            await self.table.update(
                {"pk": {"S": message_key(message_id)}}, update, condition, return_old=True
            )
        except ConditionFailed as refused:
            status = (refused.item or {}).get("status", {}).get("S")
            return bool(status != Status.CANCELED.value)
        return True
