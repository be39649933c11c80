"""The API's SQS client, for the mail queue and the schedule queue alike."""

from __future__ import annotations

from limbo_shared.sqs_http import SqsHttpClient, sqs_http_client

from .settings import ApiSettings

__all__ = ["publishing_client"]


def publishing_client(settings: ApiSettings, pool: int) -> SqsHttpClient:
    """Called from the event loop: a request's publish costs no thread hop, and a lone
    SendMessageBatch about a third of boto3's CPU (limbo_shared/sqs_http.py).

    One attempt per call: a publish that failed answers 503 and the client retries
    (Retry-After); a hidden second attempt could land after that 503 and make the
    client's retry a second email. It also bounds a call to connect + read timeout,
    which the publisher's IN_FLIGHT_GRACE relies on."""
    return sqs_http_client(
        region=settings.region,
        endpoint_url=settings.aws_endpoint_url,
        pool=pool,
        max_attempts=1,
        connect_timeout=2.0,
        read_timeout=5.0,
    )
