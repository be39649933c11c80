"""An asyncio face on one SQS queue.

The services call SQS from the event loop (:mod:`limbo_shared.sqs_http`); a boto3
client works too, its calls on a thread of the given executor (the tests' emulator
set-up, the tools). Batch calls answer one outcome per entry because SQS can fail
single entries inside an HTTP 200.
"""

from __future__ import annotations

from collections.abc import Iterable, Mapping, Sequence
from concurrent.futures import Executor
from dataclasses import dataclass, field
from typing import TYPE_CHECKING, Any, TypeVar, cast

from botocore.client import BaseClient

from .aws import AwsError, call_aws

if TYPE_CHECKING:
    from types_boto3_sqs import SQSClient
    from types_boto3_sqs.literals import QueueAttributeNameType
    from types_boto3_sqs.type_defs import (
        BatchResultErrorEntryTypeDef,
        MessageAttributeValueTypeDef,
        ReceiveMessageRequestTypeDef,
        SendMessageBatchRequestEntryTypeDef,
        SendMessageRequestTypeDef,
    )

    from .sqs_http import SqsHttpClient

__all__ = [
    "MAX_MESSAGE_ATTRIBUTES",
    "SQS_MESSAGE_LIMIT",
    "EntryFailed",
    "OutgoingMessage",
    "QueueUnavailable",
    "ReceivedMessage",
    "SqsQueue",
]

# SQS's limit on one message (body and attributes), and on one batch call as a whole.
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
    # FIFO queues need both; a standard queue (the schedule queue) takes neither.
    group_id: str | None
    deduplication_id: str | None
    attributes: Mapping[str, Mapping[str, Any]] = field(default_factory=dict)
    # Standard queues only: SQS keeps the message invisible this long (at most 900 s).
    delay_seconds: int | None = None

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
    message_attributes: Mapping[str, Mapping[str, Any]]

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


# boto3's method for each SQS action this module calls.
_BOTO_METHODS = {
    "GetQueueAttributes": "get_queue_attributes",
    "SendMessage": "send_message",
    "SendMessageBatch": "send_message_batch",
    "ReceiveMessage": "receive_message",
    "DeleteMessageBatch": "delete_message_batch",
    "ChangeMessageVisibilityBatch": "change_message_visibility_batch",
}


class SqsQueue:
    """One queue, through either client: an :class:`SqsHttpClient` on the event loop
    (the services), or boto3 on ``executor``'s threads. Both take and answer the same
    shapes, boto3's."""

    def __init__(
        self, client: SQSClient | SqsHttpClient, url: str, executor: Executor | None = None
    ) -> None:
        # sqs_http needs aiohttp, which only the services that call SQS from the loop
        # install (limbo-shared[sqs-http]); a boto3 client is told apart without it.
        self._http = None if isinstance(client, BaseClient) else client
        if self._http is None and executor is None:
            raise ValueError("a boto3 client needs an executor to run its calls on")
        self.client = client
        self.url = url
        self.name = url.rstrip("/").rsplit("/", 1)[-1]
        self._executor = executor

    async def _call(self, action: str, params: Mapping[str, Any]) -> dict[str, Any]:
        """One SQS action with boto3's parameters; QueueUnavailable names it on failure."""
        try:
            if self._http is not None:
                return await self._http.call(action, params)
            method = getattr(self.client, _BOTO_METHODS[action])
            assert self._executor is not None
            answer: dict[str, Any] = await call_aws(self._executor, lambda: method(**params))
            return answer
        except AwsError as error:
            raise QueueUnavailable(f"SQS {_BOTO_METHODS[action]} failed: {error}") from error

    async def aclose(self) -> None:
        """Close the connections of an event-loop client (boto3's need nothing)."""
        if self._http is not None:
            await self._http.aclose()

    async def check(self) -> None:
        """Raise QueueUnavailable unless the queue answers."""
        await self.attributes("QueueArn")

    async def attributes(self, *names: QueueAttributeNameType) -> dict[str, str]:
        response = await self._call(
            "GetQueueAttributes", {"QueueUrl": self.url, "AttributeNames": list(names)}
        )
        return {name: value for name, value in response.get("Attributes", {}).items()}

    async def send_batch(self, messages: Sequence[OutgoingMessage]) -> list[str | BaseException]:
        """SendMessageBatch; answers the SQS MessageId or the failure, per message."""
        entries: list[SendMessageBatchRequestEntryTypeDef] = []
        for index, message in enumerate(messages):
            entry: SendMessageBatchRequestEntryTypeDef = {
                "Id": str(index),
                "MessageBody": message.body,
            }
            if message.group_id is not None:
                entry["MessageGroupId"] = message.group_id
            if message.deduplication_id is not None:
                entry["MessageDeduplicationId"] = message.deduplication_id
            if message.attributes:
                entry["MessageAttributes"] = _sqs_attributes(message.attributes)
            if message.delay_seconds is not None:
                entry["DelaySeconds"] = message.delay_seconds
            entries.append(entry)
        response = await self._call("SendMessageBatch", {"QueueUrl": self.url, "Entries": entries})
        return _per_entry(
            len(messages),
            [(ok["Id"], str(ok["MessageId"])) for ok in response.get("Successful", [])],
            response.get("Failed", []),
        )

    async def send(self, message: OutgoingMessage) -> str:
        request: SendMessageRequestTypeDef = {"QueueUrl": self.url, "MessageBody": message.body}
        if message.group_id is not None:
            request["MessageGroupId"] = message.group_id
        if message.deduplication_id is not None:
            request["MessageDeduplicationId"] = message.deduplication_id
        if message.attributes:
            request["MessageAttributes"] = _sqs_attributes(message.attributes)
        if message.delay_seconds is not None:
            request["DelaySeconds"] = message.delay_seconds
        response = await self._call("SendMessage", request)
        return str(response["MessageId"])

    async def send_standard(
        self,
        body: str,
        *,
        delay_seconds: int = 0,
        attributes: dict[str, dict[str, Any]] | None = None,
    ) -> str:
        """SendMessage to a standard queue: no group or deduplication id, and a per-message
        delay (0-900 s), which FIFO queues do not have."""
        request: SendMessageRequestTypeDef = {
            "QueueUrl": self.url,
            "MessageBody": body,
            "DelaySeconds": max(0, min(900, delay_seconds)),
        }
        if attributes:
            request["MessageAttributes"] = _sqs_attributes(attributes)
        response = await self._call("SendMessage", request)
        return str(response["MessageId"])

    async def receive(
        self, *, max_messages: int, wait_seconds: int, visibility_timeout: int | None = None
    ) -> list[ReceivedMessage]:
        request: ReceiveMessageRequestTypeDef = {
            "QueueUrl": self.url,
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
            request["VisibilityTimeout"] = visibility_timeout
        response = await self._call("ReceiveMessage", request)
        return [
            ReceivedMessage(
                message_id=raw["MessageId"],
                receipt_handle=raw["ReceiptHandle"],
                body=raw.get("Body", ""),
                attributes={name: value for name, value in raw.get("Attributes", {}).items()},
                message_attributes=raw.get("MessageAttributes", {}),
            )
            for raw in response.get("Messages", [])
        ]

    async def delete_batch(self, receipt_handles: Sequence[str]) -> list[BaseException | None]:
        entries = [
            {"Id": str(i), "ReceiptHandle": handle} for i, handle in enumerate(receipt_handles)
        ]
        response = await self._call(
            "DeleteMessageBatch", {"QueueUrl": self.url, "Entries": entries}
        )
        return _per_entry(
            len(receipt_handles),
            [(ok["Id"], None) for ok in response.get("Successful", [])],
            response.get("Failed", []),
        )

    async def change_visibility_batch(
        self, changes: Sequence[tuple[str, int]]
    ) -> list[BaseException | None]:
        entries = [
            {"Id": str(i), "ReceiptHandle": handle, "VisibilityTimeout": max(0, int(timeout))}
            for i, (handle, timeout) in enumerate(changes)
        ]
        response = await self._call(
            "ChangeMessageVisibilityBatch", {"QueueUrl": self.url, "Entries": entries}
        )
        return _per_entry(
            len(changes),
            [(ok["Id"], None) for ok in response.get("Successful", [])],
            response.get("Failed", []),
        )


def _sqs_attributes(
    attributes: Mapping[str, Mapping[str, Any]],
) -> Mapping[str, MessageAttributeValueTypeDef]:
    # limbo keeps attributes in SQS's wire shape as plain dicts (a dead letter carries
    # whatever arrived, binary or string); SQS validates them, so their type is asserted
    # here, at the one place they leave limbo.
    return cast("Mapping[str, MessageAttributeValueTypeDef]", attributes)


R = TypeVar("R")


def _per_entry(
    count: int, successful: Iterable[tuple[str, R]], failed: Iterable[BatchResultErrorEntryTypeDef]
) -> list[R | BaseException]:
    """One outcome per entry, in request order, from a batch call's (Id, value) successes."""
    results: list[R | BaseException] = [
        EntryFailed("Missing", "SQS did not answer for this entry", False)
    ] * count
    for entry_id, value in successful:
        results[int(entry_id)] = value
    for entry in failed:
        results[int(entry["Id"])] = EntryFailed(
            entry.get("Code", "?"), entry.get("Message", ""), bool(entry.get("SenderFault"))
        )
    return results
