"""Webhook tokens seen before, so a replayed webhook is refused on every API replica."""

from __future__ import annotations

import hashlib
import time

from .table import ConditionFailed, DynamoTable

__all__ = ["WebhookTokens"]


class WebhookTokens:
    def __init__(self, table: DynamoTable) -> None:
        self.table = table

    async def first_use(self, source: str, token: str, *, keep_seconds: float) -> bool:
        """Remember ``token``; False when it was seen before (a replay).

        Kept for as long as its timestamp is accepted (then the age check refuses it).
        """
        now = time.time()
        digest = hashlib.sha256(token.encode()).hexdigest()
        try:
            # DynamoDB deletes expired items late: an expired one counts as absent.
            await self.table.call(
                "put_item",
                lambda client, table: client.put_item(
                    TableName=table,
                    Item={
                        "pk": {"S": f"hook#{source}#{digest}"},
                        "expires_at": {"N": str(int(now + keep_seconds) + 1)},
                    },
                    ConditionExpression="attribute_not_exists(pk) OR expires_at < :now",
                    ExpressionAttributeValues={":now": {"N": repr(now)}},
                ),
            )
        except ConditionFailed:
            return False
        return True

    async def forget(self, source: str, token: str) -> None:
        """The webhook was not queued after all: its retry must be accepted."""
        digest = hashlib.sha256(token.encode()).hexdigest()
        await self.table.call(
            "delete_item",
            lambda client, table: client.delete_item(
                TableName=table, Key={"pk": {"S": f"hook#{source}#{digest}"}}
            ),
        )
