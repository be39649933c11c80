"""The API's SQS client, for the mail queue and the schedule queue alike."""

from __future__ import annotations

from typing import TYPE_CHECKING

from limbo_shared.aws import make_client

from .settings import ApiSettings

if TYPE_CHECKING:
    from types_boto3_sqs import SQSClient

__all__ = ["publishing_client"]


def publishing_client(settings: ApiSettings, pool: int) -> SQSClient:
    """One attempt per call: a publish that failed answers 503 and the client retries
    (Retry-After); a hidden second attempt could land after that 503 and make the
    client's retry a second email. It also bounds a call to connect + read timeout,
    which the publisher's IN_FLIGHT_GRACE relies on."""
    return make_client(
        "sqs",
        region=settings.region,
        endpoint_url=settings.aws_endpoint_url,
        max_pool_connections=pool,
        max_attempts=1,
        connect_timeout=2.0,
        read_timeout=5.0,
    )
