"""boto3 clients built one way for every process: bounded timeouts, sized pools."""

from __future__ import annotations

from typing import Any

import boto3
from botocore.config import Config

__all__ = ["make_client"]


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
