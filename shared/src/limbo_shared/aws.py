"""boto3 clients built one way for every process, and their calls kept off the event loop.

Clients have bounded timeouts and sized pools. :func:`call_aws` runs one call on an
executor and turns botocore's two exception families into one :class:`AwsError`, so
each caller maps a single exception to its own meaning (queue unavailable, store
unavailable, provider refusal).
"""

from __future__ import annotations

import asyncio
import functools
from collections.abc import Callable
from concurrent.futures import Executor
from typing import Any

import boto3
from botocore.config import Config
from botocore.exceptions import BotoCoreError, ClientError

__all__ = ["AwsError", "call_aws", "make_client"]


class AwsError(Exception):
    """An AWS call failed: AWS answered with an error, or could not be reached.

    ``code`` is AWS's error code (``None`` when no answer came back), ``status`` the
    HTTP status (0 without an answer), ``item`` the item a refused conditional write
    returned. ``str()`` is ``Code: Message`` or botocore's description.
    """

    def __init__(
        self,
        description: str,
        *,
        code: str | None = None,
        status: int = 0,
        item: dict[str, Any] | None = None,
    ) -> None:
        super().__init__(description)
        self.code = code
        self.status = status
        self.item = item

    @property
    def answered(self) -> bool:
        """True when AWS answered (with an error), False when it was not reached."""
        return self.code is not None


async def call_aws(executor: Executor, method: Callable[..., Any], /, **kwargs: Any) -> Any:
    """``method(**kwargs)`` on ``executor``; any botocore failure comes out as AwsError."""
    loop = asyncio.get_running_loop()
    try:
        return await loop.run_in_executor(executor, functools.partial(method, **kwargs))
    except ClientError as error:
        info = error.response.get("Error", {})
        code = str(info.get("Code") or "Unknown")
        raise AwsError(
            f"{code}: {info.get('Message', '')}",
            code=code,
            status=int(error.response.get("ResponseMetadata", {}).get("HTTPStatusCode", 0)),
            item=error.response.get("Item"),
        ) from error
    except BotoCoreError as error:
        raise AwsError(str(error)) from error


def make_client(
    service: str,
    *,
    region: str,
    endpoint_url: str | None,
    read_timeout: float = 5.0,
    connect_timeout: float = 2.0,
    max_attempts: int = 2,
    max_pool_connections: int = 20,
) -> Any:
    """A client whose calls fail within a bounded time instead of hanging.

    ``read_timeout`` must exceed an SQS long poll's WaitTimeSeconds for receive clients.
    """
    config = Config(
        region_name=region,
        connect_timeout=connect_timeout,
        read_timeout=read_timeout,
        retries={"mode": "standard", "max_attempts": max_attempts},
        max_pool_connections=max_pool_connections,
    )
    # A fresh session per client: boto3's default session is not thread-safe to share.
    session = boto3.session.Session()
    return session.client(service, endpoint_url=endpoint_url, config=config)
