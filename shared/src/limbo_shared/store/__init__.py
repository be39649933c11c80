"""Message tracking: status records, worker claims and idempotency keys in DynamoDB."""

from __future__ import annotations

from concurrent.futures import ThreadPoolExecutor

from ..aws import make_client
from .idempotency import IDEMPOTENCY_TTL_SECONDS, IdempotencyKeys, Reservation, ReservationOutcome
from .messages import Claim, ClaimOutcome, MessageStore
from .records import MessageRecord, Status, StatusSettings
from .schedule import Cancellation, CancelOutcome, ScheduleRecords
from .table import ConditionFailed, DynamoTable, StoreUnavailable

__all__ = [
    "IDEMPOTENCY_TTL_SECONDS",
    "CancelOutcome",
    "Cancellation",
    "Claim",
    "ClaimOutcome",
    "ConditionFailed",
    "DynamoTable",
    "IdempotencyKeys",
    "MessageRecord",
    "MessageStore",
    "Reservation",
    "ReservationOutcome",
    "ScheduleRecords",
    "Status",
    "StatusSettings",
    "StoreUnavailable",
    "open_table",
]


def open_table(name: str, *, region: str, endpoint_url: str | None, threads: int) -> DynamoTable:
    """A table on its own thread pool, so store calls never queue behind SQS long polls."""
    client = make_client(
        "dynamodb", region=region, endpoint_url=endpoint_url, max_pool_connections=threads
    )
    return DynamoTable(client, name, ThreadPoolExecutor(threads, thread_name_prefix="dynamodb"))
