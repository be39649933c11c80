"""Message tracking: status records, worker claims and idempotency keys in DynamoDB."""

from __future__ import annotations

from concurrent.futures import ThreadPoolExecutor

from ..aws import make_client
from .idempotency import IDEMPOTENCY_TTL_SECONDS, IdempotencyKeys, Reservation, ReservationOutcome
from .messages import Claim, ClaimOutcome, MessageStore
from .outcomes import DeliveryOutcomes, RecipientOutcome
from .records import MessageRecord, Status, StatusSettings
from .schedule import Cancellation, CancelOutcome, ScheduleRecords
from .suppressions import (
    CURSOR_PATTERN,
    MAX_CURSOR,
    SUPPRESSION_INDEX,
    Suppression,
    SuppressionPage,
    Suppressions,
    normalize_address,
)
from .table import ConditionFailed, DynamoTable, StoreUnavailable
from .webhook_tokens import WebhookTokens

__all__ = [
    "CURSOR_PATTERN",
    "IDEMPOTENCY_TTL_SECONDS",
    "MAX_CURSOR",
    "SUPPRESSION_INDEX",
    "CancelOutcome",
    "Cancellation",
    "Claim",
    "ClaimOutcome",
    "ConditionFailed",
    "DeliveryOutcomes",
    "DynamoTable",
    "IdempotencyKeys",
    "MessageRecord",
    "MessageStore",
    "RecipientOutcome",
    "Reservation",
    "ReservationOutcome",
    "ScheduleRecords",
    "Status",
    "StatusSettings",
    "StoreUnavailable",
    "Suppression",
    "SuppressionPage",
    "Suppressions",
    "WebhookTokens",
    "normalize_address",
    "open_table",
]


def open_table(name: str, *, region: str, endpoint_url: str | None, threads: int) -> DynamoTable:
    """A table on its own thread pool, so store calls never queue behind SQS long polls."""
    client = make_client(
        "dynamodb", region=region, endpoint_url=endpoint_url, max_pool_connections=threads
    )
    return DynamoTable(client, name, ThreadPoolExecutor(threads, thread_name_prefix="dynamodb"))
