"""One DynamoDB table reached through boto3 on a thread pool, so the event loop never blocks.

Errors come out as :class:`StoreUnavailable` (the store could not answer) or
:class:`ConditionFailed` (it answered no to a conditional write), nothing else.
"""

from __future__ import annotations

from collections.abc import Callable, Mapping, Sequence
from concurrent.futures import Executor
from typing import TYPE_CHECKING, Any, TypeVar

from prometheus_client import Counter

from ..aws import AwsError, call_aws

if TYPE_CHECKING:
    from types_boto3_dynamodb import DynamoDBClient
    from types_boto3_dynamodb.type_defs import (
        BatchGetItemOutputTypeDef,
        BatchWriteItemOutputTypeDef,
        PutItemInputTypeDef,
        UniversalAttributeValueTypeDef,
        UpdateItemOutputTypeDef,
    )

__all__ = ["ConditionFailed", "DynamoTable", "StoreUnavailable", "Update"]

T = TypeVar("T")

# Module level: Prometheus refuses to register a metric twice in one process.
_CALLS = Counter(
    "limbo_status_store_calls_total",
    "Calls to the status store (DynamoDB), by operation and result",
    ["operation", "result"],
)


class StoreUnavailable(Exception):
    """The status store did not answer (network, throttling, missing table...)."""


class ConditionFailed(Exception):
    """A conditional write was refused; ``item`` is the item as it was, when known."""

    def __init__(self, item: dict[str, Any] | None) -> None:
        super().__init__("condition failed")
        self.item = item


class DynamoTable:
    """Owns its executor: :meth:`close` shuts it down."""

    def __init__(self, client: DynamoDBClient, name: str, executor: Executor) -> None:
        self.client = client
        self.name = name
        self._executor = executor

    def close(self) -> None:
        self._executor.shutdown(wait=False, cancel_futures=True)

    async def call(self, operation: str, request: Callable[[DynamoDBClient, str], T]) -> T:
        """Run ``request(client, table name)`` on the pool; ``operation`` names it in
        metrics and errors."""
        return await self._call(operation, lambda: request(self.client, self.name))

    async def batch_put(
        self, items: Sequence[Mapping[str, UniversalAttributeValueTypeDef]]
    ) -> BatchWriteItemOutputTypeDef:
        """BatchWriteItem takes the table name inside the request, not beside it."""
        return await self._call(
            "batch_write_item",
            lambda: self.client.batch_write_item(
                RequestItems={self.name: [{"PutRequest": {"Item": item}} for item in items]}
            ),
        )

    async def _call(self, operation: str, call: Callable[[], T]) -> T:
        try:
            response = await call_aws(self._executor, call)
        except AwsError as error:
            if error.code == "ConditionalCheckFailedException":
                _CALLS.labels(operation, "condition_failed").inc()
                raise ConditionFailed(error.item) from None
            _CALLS.labels(operation, "error").inc()
            raise StoreUnavailable(f"DynamoDB {operation} failed: {error}") from error
        _CALLS.labels(operation, "ok").inc()
        return response

    async def update(
        self,
        key: Mapping[str, UniversalAttributeValueTypeDef],
        update: Update,
        condition: str | None = None,
        *,
        return_old: bool = False,
        return_new: bool = False,
    ) -> UpdateItemOutputTypeDef:
        """UpdateItem of the item at ``key``; where ``condition`` fails, ConditionFailed
        (carrying the item as it was when ``return_old``). ``return_new``: the answer's
        ``Attributes`` hold the item as written."""
        extra: dict[str, Any] = {}
        if return_old:
            extra["ReturnValuesOnConditionCheckFailure"] = "ALL_OLD"
        if return_new:
            extra["ReturnValues"] = "ALL_NEW"
        return await self._call(
            "update_item",
            lambda: self.client.update_item(
                TableName=self.name, Key=key, **extra, **update.arguments(condition)
            ),
        )

    async def put_if(
        self,
        item: Mapping[str, UniversalAttributeValueTypeDef],
        condition: str,
        *,
        names: Mapping[str, str] | None = None,
        values: Mapping[str, UniversalAttributeValueTypeDef] | None = None,
        return_old: bool = False,
    ) -> None:
        """PutItem where ``condition`` holds, else ConditionFailed (carrying the item as it
        was when ``return_old``)."""
        request: PutItemInputTypeDef = {
            "TableName": self.name,
            "Item": item,
            "ConditionExpression": condition,
        }
        if names:
            request["ExpressionAttributeNames"] = names
        if values:
            request["ExpressionAttributeValues"] = values
        if return_old:
            request["ReturnValuesOnConditionCheckFailure"] = "ALL_OLD"
        await self._call("put_item", lambda: self.client.put_item(**request))

    async def put_all_if(
        self,
        items: Sequence[Mapping[str, UniversalAttributeValueTypeDef]],
        condition: str,
        names: Mapping[str, str],
        values: Mapping[str, UniversalAttributeValueTypeDef],
    ) -> bool:
        """Put every item, each only where ``condition`` holds, in one TransactWriteItems.

        False when the transaction was cancelled (a condition failed, or a conflict): then
        nothing was written and the caller writes the items one at a time.
        """
        try:
            await self._call(
                "transact_write_items",
                lambda: self.client.transact_write_items(
                    TransactItems=[
                        {
                            "Put": {
                                "TableName": self.name,
                                "Item": item,
                                "ConditionExpression": condition,
                                "ExpressionAttributeNames": names,
                                "ExpressionAttributeValues": values,
                            }
                        }
                        for item in items
                    ]
                ),
            )
        except StoreUnavailable as error:
            cause = error.__cause__
            if isinstance(cause, AwsError) and cause.code == "TransactionCanceledException":
                return False
            raise
        return True

    async def batch_get(
        self,
        keys: Sequence[Mapping[str, UniversalAttributeValueTypeDef]],
        *,
        projection: str = "pk",
    ) -> BatchGetItemOutputTypeDef:
        """BatchGetItem of up to 100 keys; the caller retries ``UnprocessedKeys``."""
        return await self._call(
            "batch_get_item",
            lambda: self.client.batch_get_item(
                RequestItems={self.name: {"Keys": keys, "ProjectionExpression": projection}}
            ),
        )


class Update:
    """Builds an UpdateExpression with every name and value behind a placeholder.

    DynamoDB reserves hundreds of words (``status``, ``owner``...); naming every
    attribute through ``#n`` placeholders avoids tripping over any of them.
    """

    def __init__(self) -> None:
        self.names: dict[str, str] = {}
        self.values: dict[str, Any] = {}
        self._sets: list[str] = []
        self._removes: list[str] = []

    def name(self, attribute: str) -> str:
        placeholder = f"#{attribute}"
        self.names[placeholder] = attribute
        return placeholder

    def value(self, value: Any) -> str:
        placeholder = f":v{len(self.values)}"
        self.values[placeholder] = _typed(value)
        return placeholder

    def set(self, attribute: str, value: Any, *, if_absent: bool = False) -> Update:
        name, placeholder = self.name(attribute), self.value(value)
        expression = f"if_not_exists({name}, {placeholder})" if if_absent else placeholder
        self._sets.append(f"{name} = {expression}")
        return self

    def increment(self, attribute: str) -> Update:
        name = self.name(attribute)
        self._sets.append(f"{name} = if_not_exists({name}, {self.value(0)}) + {self.value(1)}")
        return self

    def remove(self, *attributes: str) -> Update:
        self._removes += [self.name(attribute) for attribute in attributes]
        return self

    def expression(self) -> str:
        parts = []
        if self._sets:
            parts.append("SET " + ", ".join(self._sets))
        if self._removes:
            parts.append("REMOVE " + ", ".join(self._removes))
        return " ".join(parts)

    def arguments(self, condition: str | None = None) -> dict[str, Any]:
        arguments: dict[str, Any] = {
            "UpdateExpression": self.expression(),
            "ExpressionAttributeNames": self.names,
        }
        if self.values:
            arguments["ExpressionAttributeValues"] = self.values
        if condition is not None:
            arguments["ConditionExpression"] = condition
        return arguments


def _typed(value: Any) -> dict[str, str]:
    if isinstance(value, bool):
        raise TypeError("booleans are not stored")
    if isinstance(value, int | float):
        return {"N": repr(value) if isinstance(value, float) else str(value)}
    return {"S": str(value)}
