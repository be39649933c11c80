"""An asyncio face on one SQS queue.

boto3 is synchronous; every call runs on a thread of the given executor so the event
loop keeps serving requests while a call waits on the network. Batch calls answer one
outcome per entry because SQS can fail single entries inside an HTTP 200.
"""

from __future__ import annotations

import asyncio
import functools
from collections.abc import Sequence
from concurrent.futures import Executor
from dataclasses import dataclass, field
from typing import Any, TypeVar

from botocore.exceptions import BotoCoreError, ClientError

__all__ = [
    "MAX_MESSAGE_ATTRIBUTES",
    "SQS_MESSAGE_LIMIT",
    "EntryFailed",
    "OutgoingMessage",
    "QueueUnavailable",
    "ReceivedMessage",
    "SqsQueue",
]

T = TypeVar("T")

# SQS's limit for one message, body and attributes together.
SQS_MESSAGE_LIMIT = 1_048_576
# SQS refuses a message with more than ten attributes.
MAX_MESSAGE_ATTRIBUTES = 10


class QueueUnavailable(Exception):
    """The queue could not be reached or refused the call as a whole."""


class EntryFailed(Exception):
    """SQS rejected one entry of a batch call."""

    def __init__(self, code: str, message: str, sender_fault: bool) -> None:
        super().__init__(f"{code}: {message}")
        self.code = code
        self.sender_fault = sender_fault


@dataclass(frozen=True)
class OutgoingMessage:
    body: str
    group_id: str
    deduplication_id: str
    attributes: dict[str, dict[str, Any]] = field(default_factory=dict)

    def size(self) -> int:
        """Bytes SQS counts against its per-message and per-batch limit."""
        total = len(self.body.encode())
        for name, attribute in self.attributes.items():
            total += len(name.encode()) + len(attribute["DataType"].encode())
            value = attribute.get("StringValue")
            # Binary attributes count too (a dead letter carries what arrived).
            total += (
                len(value.encode())
                if isinstance(value, str)
                else len(attribute.get("BinaryValue") or b"")
            )
        return total


@dataclass(frozen=True)
class ReceivedMessage:
    message_id: str
    receipt_handle: str
    body: str
    attributes: dict[str, str]
    message_attributes: dict[str, dict[str, Any]]

    @property
    def receive_count(self) -> int:
        return int(self.attributes.get("ApproximateReceiveCount", "1"))

    @property
    def sent_timestamp(self) -> float | None:
        raw = self.attributes.get("SentTimestamp")
        return int(raw) / 1000.0 if raw else None

    @property
    def group_id(self) -> str | None:
        return self.attributes.get("MessageGroupId")


class SqsQueue:
    def __init__(self, client: Any, url: str, executor: Executor) -> None:
        self.client = client
        self.url = url
        self.name = url.rstrip("/").rsplit("/", 1)[-1]
        self._executor = executor

    async def _call(self, method: str, **kwargs: Any) -> Any:
        loop = asyncio.get_running_loop()
        call = functools.partial(getattr(self.client, method), QueueUrl=self.url, **kwargs)
        try:
            return await loop.run_in_executor(self._executor, call)
        except ClientError as error:
            info = error.response.get("Error", {})
            raise QueueUnavailable(
                f"SQS {method} failed: {info.get('Code', '?')}: {info.get('Message', '')}"
            ) from error
        except BotoCoreError as error:
            raise QueueUnavailable(f"SQS {method} failed: {error}") from error

    async def check(self) -> None:
        """Raise QueueUnavailable unless the queue answers."""
        await self._call("get_queue_attributes", AttributeNames=["QueueArn"])

    async def attributes(self, *names: str) -> dict[str, str]:
        response = await self._call("get_queue_attributes", AttributeNames=list(names))
        return dict(response.get("Attributes", {}))

    async def send_batch(self, messages: Sequence[OutgoingMessage]) -> list[str | BaseException]:
        """SendMessageBatch; answers the SQS MessageId or the failure, per message."""
        entries = []
        for index, message in enumerate(messages):
            entry: dict[str, Any] = {
                "Id": str(index),
                "MessageBody": message.body,
                "MessageGroupId": message.group_id,
                "MessageDeduplicationId": message.deduplication_id,
            }
            if message.attributes:
                entry["MessageAttributes"] = message.attributes
            entries.append(entry)
        response = await self._call("send_message_batch", Entries=entries)
        return _per_entry(len(messages), response, lambda ok: str(ok["MessageId"]))

    async def send(self, message: OutgoingMessage) -> str:
        kwargs: dict[str, Any] = {
            "MessageBody": message.body,
            "MessageGroupId": message.group_id,
            "MessageDeduplicationId": message.deduplication_id,
        }
        if message.attributes:
            kwargs["MessageAttributes"] = message.attributes
        response = await self._call("send_message", **kwargs)
        return str(response["MessageId"])

    async def receive(
        self, *, max_messages: int, wait_seconds: int, visibility_timeout: int | None = None
    ) -> list[ReceivedMessage]:
        kwargs: dict[str, Any] = {
            "MaxNumberOfMessages": max_messages,
            "WaitTimeSeconds": wait_seconds,
            "MessageAttributeNames": ["All"],
            "MessageSystemAttributeNames": [
                "ApproximateReceiveCount",
                "SentTimestamp",
                "MessageGroupId",
            ],
        }
        if visibility_timeout is not None:
            kwargs["VisibilityTimeout"] = visibility_timeout
        response = await self._call("receive_message", **kwargs)
        return [
            ReceivedMessage(
                message_id=raw["MessageId"],
                receipt_handle=raw["ReceiptHandle"],
                body=raw.get("Body", ""),
                attributes=dict(raw.get("Attributes", {})),
                message_attributes=dict(raw.get("MessageAttributes", {})),
            )
            for raw in response.get("Messages", [])
        ]

    async def delete_batch(self, receipt_handles: Sequence[str]) -> list[BaseException | None]:
        entries = [{"Id": str(i), "ReceiptHandle": h} for i, h in enumerate(receipt_handles)]
        response = await self._call("delete_message_batch", Entries=entries)
        return _per_entry(len(entries), response, lambda ok: None)

    async def change_visibility_batch(
        self, changes: Sequence[tuple[str, int]]
    ) -> list[BaseException | None]:
        entries = [
            {"Id": str(i), "ReceiptHandle": handle, "VisibilityTimeout": max(0, int(timeout))}
            for i, (handle, timeout) in enumerate(changes)
        ]
        response = await self._call("change_message_visibility_batch", Entries=entries)
        return _per_entry(len(entries), response, lambda ok: None)


def _per_entry(count: int, response: dict[str, Any], value: Any) -> list[Any]:
    results: list[Any] = [
        EntryFailed("Missing", "SQS did not answer for this entry", False)
    ] * count
    for ok in response.get("Successful", []):
        results[int(ok["Id"])] = value(ok)
    for failed in response.get("Failed", []):
        results[int(failed["Id"])] = EntryFailed(
            failed.get("Code", "?"), failed.get("Message", ""), bool(failed.get("SenderFault"))
        )
    return results
