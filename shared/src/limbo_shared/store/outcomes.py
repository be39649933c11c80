"""Per-recipient delivery outcomes, beside the message's record, never moving backwards.

They live in an item of their own (``outcome#<id>``) rather than in the message record:
the worker replaces that record whole when it records ``sent``, and an event that
arrives first must not be lost to that put. Each recipient is one attribute, written
with a condition on its precedence, so a duplicate or a late event changes nothing.

The recipient's address is stored here (the client asked for it and reads it back);
it never goes to logs, metrics or traces, and the item expires with the record.
"""

from __future__ import annotations

import hashlib
import time
from dataclasses import dataclass
from typing import Any

from ..events.model import DeliveryEvent
from .records import _iso
from .table import ConditionFailed, DynamoTable

__all__ = ["DeliveryOutcomes", "RecipientOutcome", "outcome_key"]

_PREFIX = "r_"


def outcome_key(message_id: str) -> str:
    return f"outcome#{message_id}"


def _attribute(address: str) -> str:
    # Addresses may hold characters DynamoDB names dislike; a short hash never does.
    return _PREFIX + hashlib.sha256(address.lower().encode()).hexdigest()[:24]


@dataclass(frozen=True)
class RecipientOutcome:
    recipient: str
    outcome: str
    precedence: int
    at: float
    source: str
    bounce_type: str | None = None
    diagnostic: str | None = None

    def public(self) -> dict[str, Any]:
        answer: dict[str, Any] = {
            "recipient": self.recipient,
            "outcome": self.outcome,
            "at": _iso(self.at),
            "source": self.source,
        }
        if self.bounce_type is not None:
            answer["bounce_type"] = self.bounce_type
        if self.diagnostic is not None:
            answer["diagnostic"] = self.diagnostic
        return answer

    @classmethod
    def from_map(cls, value: dict[str, Any]) -> RecipientOutcome:
        fields = value["M"]

        def text(name: str) -> str | None:
            return fields[name]["S"] if name in fields else None

        return cls(
            recipient=fields["recipient"]["S"],
            outcome=fields["outcome"]["S"],
            precedence=int(fields["precedence"]["N"]),
            at=float(fields["at"]["N"]),
            source=fields["source"]["S"],
            bounce_type=text("bounce_type"),
            diagnostic=text("diagnostic"),
        )


class DeliveryOutcomes:
    def __init__(self, table: DynamoTable, *, ttl_days: int) -> None:
        self.table = table
        self.ttl_seconds = ttl_days * 86_400

    async def apply(self, event: DeliveryEvent, recipient: str, *, created_at: float) -> bool:
        """Record the event for one recipient; False when it would move the outcome back
        (or repeat it): later-in-life outcomes win, then the same outcome keeps its first
        report."""
        value: dict[str, Any] = {
            "recipient": {"S": recipient},
            "outcome": {"S": event.outcome.value},
            "precedence": {"N": str(event.precedence)},
            "at": {"N": repr(event.occurred_at)},
            "source": {"S": event.source},
        }
        if event.bounce_type is not None:
            value["bounce_type"] = {"S": event.bounce_type.value}
        if event.diagnostic is not None:
            value["diagnostic"] = {"S": event.diagnostic}
        try:
            await self.table.call(
                "update_item",
                lambda client, table: client.update_item(
                    TableName=table,
                    Key={"pk": {"S": outcome_key(event.message_id)}},
                    UpdateExpression=(
                        "SET #r = :outcome, #expires = if_not_exists(#expires, :expires), "
                        "#updated = :now"
                    ),
                    ConditionExpression="attribute_not_exists(#r) OR #r.#precedence < :precedence",
                    ExpressionAttributeNames={
                        "#r": _attribute(recipient),
                        "#precedence": "precedence",
                        "#expires": "expires_at",
                        "#updated": "updated_at",
                    },
                    ExpressionAttributeValues={
                        ":outcome": {"M": value},
                        ":precedence": {"N": str(event.precedence)},
                        ":expires": {"N": str(int(created_at) + self.ttl_seconds)},
                        ":now": {"N": repr(time.time())},
                    },
                ),
            )
        except ConditionFailed:
            return False
        return True

    async def get(self, message_id: str) -> list[RecipientOutcome]:
        response = await self.table.call(
            "get_item",
            lambda client, table: client.get_item(
                TableName=table, Key={"pk": {"S": outcome_key(message_id)}}, ConsistentRead=True
            ),
        )
        item: dict[str, Any] = response.get("Item") or {}
        outcomes = [RecipientOutcome.from_map(v) for k, v in item.items() if k.startswith(_PREFIX)]
        return sorted(outcomes, key=lambda outcome: (outcome.at, outcome.recipient))
