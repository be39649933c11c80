"""Queue payloads too large for SQS: kept in S3, with a pointer on the queue.

The pointer is the SQS Extended Client's (Java, Python and other clients read it): the
body ``["software.amazon.payloadoffloading.PayloadS3Pointer", {"s3BucketName": ...,
"s3Key": ...}]`` and a message attribute ``ExtendedPayloadSize`` with the payload's
size in bytes. Objects are deleted after the message's final outcome; a lifecycle rule
on the bucket expires whatever a crash left behind.
"""

from __future__ import annotations

import asyncio
import functools
import json
from collections.abc import Mapping
from concurrent.futures import Executor
from dataclasses import dataclass
from typing import Any

from botocore.exceptions import BotoCoreError, ClientError

from .aws import OnFirstUse

__all__ = [
    "POINTER_CLASS",
    "SIZE_ATTRIBUTE",
    "PayloadMissing",
    "PayloadPointer",
    "PayloadStore",
    "PayloadUnavailable",
    "read_pointer",
]

POINTER_CLASS = "software.amazon.payloadoffloading.PayloadS3Pointer"
SIZE_ATTRIBUTE = "ExtendedPayloadSize"


class PayloadUnavailable(Exception):
    """S3 could not store, return or delete a payload."""


class PayloadMissing(PayloadUnavailable):
    """The pointer points at nothing: no retry will bring the payload back."""


@dataclass(frozen=True)
class PayloadPointer:
    bucket: str
    key: str

    def body(self) -> str:
        return json.dumps([POINTER_CLASS, {"s3BucketName": self.bucket, "s3Key": self.key}])


def read_pointer(body: str, attributes: Mapping[str, Mapping[str, Any]]) -> PayloadPointer | None:
    """The pointer a queue message carries, or None for an inline message."""
    if SIZE_ATTRIBUTE not in attributes or not body.startswith("["):
        return None
    try:
        kind, where = json.loads(body)
        if kind != POINTER_CLASS:
            return None
        return PayloadPointer(str(where["s3BucketName"]), str(where["s3Key"]))
    except (ValueError, TypeError, KeyError):
        return None


class PayloadStore:
    """S3 through boto3 on a thread pool; errors come out as PayloadUnavailable.

    ``client`` may be an :class:`OnFirstUse`: it is then built, on the pool, by the first
    message that needs S3, so a process that only ever sees small mail never holds it.
    """

    def __init__(
        self,
        client: Any | OnFirstUse[Any] | None,
        executor: Executor | None,
        bucket: str | None = None,
    ) -> None:
        # Without a client only inline messages can be resolved (in-process tests).
        self.client = client
        self.bucket = bucket
        self._executor = executor

    async def _call(self, operation: str, **kwargs: Any) -> Any:
        if self.client is None:
            raise PayloadUnavailable(f"S3 {operation}: no S3 client in this process")
        loop = asyncio.get_running_loop()
        call = functools.partial(self._invoke, self.client, operation, kwargs)
        try:
            return await loop.run_in_executor(self._executor, call)
        except ClientError as error:
            code = error.response.get("Error", {}).get("Code")
            if code in ("NoSuchKey", "NoSuchBucket", "404"):
                where = f"s3://{kwargs.get('Bucket')}/{kwargs.get('Key')}"
                raise PayloadMissing(f"offloaded payload {where} does not exist") from error
            raise PayloadUnavailable(f"S3 {operation} failed: {error}") from error
        except BotoCoreError as error:
            raise PayloadUnavailable(f"S3 {operation} failed: {error}") from error

    @staticmethod
    def _invoke(client: Any, operation: str, kwargs: dict[str, Any]) -> Any:
        if isinstance(client, OnFirstUse):
            client = client.get()
        return getattr(client, operation)(**kwargs)

    async def offload(self, key: str, payload: str) -> tuple[str, dict[str, dict[str, str]]]:
        """Store ``payload``; answer the pointer body and the attribute that marks it."""
        if self.bucket is None:
            raise PayloadUnavailable("no PAYLOAD_BUCKET is configured")
        data = payload.encode()
        await self._call(
            "put_object",
            Bucket=self.bucket,
            Key=key,
            Body=data,
            ContentType="application/json",
        )
        size = {"DataType": "Number", "StringValue": str(len(data))}
        return PayloadPointer(self.bucket, key).body(), {SIZE_ATTRIBUTE: size}

    async def resolve(self, body: str, attributes: Mapping[str, Mapping[str, Any]]) -> str:
        """The message's payload: the body itself, or what its pointer points to."""
        pointer = read_pointer(body, attributes)
        if pointer is None:
            return body
        response = await self._call("get_object", Bucket=pointer.bucket, Key=pointer.key)
        loop = asyncio.get_running_loop()
        data: bytes = await loop.run_in_executor(self._executor, response["Body"].read)
        return data.decode()

    async def discard(self, body: str, attributes: Mapping[str, Mapping[str, Any]]) -> None:
        """Delete the payload of a message that reached its final outcome (if offloaded)."""
        pointer = read_pointer(body, attributes)
        if pointer is not None:
            await self._call("delete_object", Bucket=pointer.bucket, Key=pointer.key)
