"""boto3 clients built one way for every process: bounded timeouts, sized pools."""

from __future__ import annotations

from typing import TYPE_CHECKING, Literal, TypedDict, Unpack, overload

import boto3
from botocore.config import Config

if TYPE_CHECKING:
    # Dev-only stubs (types-boto3): no service needs them at run time.
    from types_boto3_dynamodb import DynamoDBClient
    from types_boto3_sesv2 import SESV2Client
    from types_boto3_sqs import SQSClient

__all__ = ["ClientOptions", "make_client"]


class ClientOptions(TypedDict, total=False):
    read_timeout: float
    connect_timeout: float
    max_attempts: int
    max_pool_connections: int


@overload
def make_client(
    service: Literal["sqs"],
    *,
    region: str,
    endpoint_url: str | None,
    **options: Unpack[ClientOptions],
) -> SQSClient: ...
@overload
def make_client(
    service: Literal["sesv2"],
    *,
    region: str,
    endpoint_url: str | None,
    **options: Unpack[ClientOptions],
) -> SESV2Client: ...
@overload
def make_client(
    service: Literal["dynamodb"],
    *,
    region: str,
    endpoint_url: str | None,
    **options: Unpack[ClientOptions],
) -> DynamoDBClient: ...
def make_client(
    service: Literal["sqs", "sesv2", "dynamodb"],
    *,
    region: str,
    endpoint_url: str | None,
    read_timeout: float = 5.0,
    connect_timeout: float = 2.0,
    max_attempts: int = 2,
    max_pool_connections: int = 20,
) -> SQSClient | SESV2Client | DynamoDBClient:
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
