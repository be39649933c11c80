"""The API's SQS client, for the mail queues and the schedule queue."""

from __future__ import annotations

from limbo_shared.sqs_http import SqsHttpClient, sqs_http_client

from .settings import ApiSettings

__all__ = ["CALL_BOUND", "publishing_client"]

CONNECT_TIMEOUT = 2.0
READ_TIMEOUT = 5.0
# The mail queues are FIFO and every message carries its id as MessageDeduplicationId,
# so a second attempt after an unanswered first one is safe: if the first landed, SQS
# drops the copy and answers for it. That turns "no answer" (which a 503 would have to
# report while the message may be queued, and the client's retry would then be a second
# email) into a definite answer. The schedule queue is a standard queue without
# deduplication: one attempt there.
FIFO_ATTEMPTS = 2
# The longest one publishing call can take: every attempt's connect and read, and the
# jittered pause before the second (at most 0.2 s, limbo_shared/sqs_http.py).
CALL_BOUND = FIFO_ATTEMPTS * (CONNECT_TIMEOUT + READ_TIMEOUT) + 0.2


def publishing_client(settings: ApiSettings, pool: int, *, deduplicated: bool) -> SqsHttpClient:
    """Called from the event loop: a request's publish costs no thread hop, and a lone
    SendMessageBatch about a third of boto3's CPU (limbo_shared/sqs_http.py).

    ``deduplicated`` (the FIFO mail queues) allows the second attempt above; otherwise a
    hidden second attempt could land after the 503 that the first one's failure
    answered, and make the client's retry a second email. Each call is bounded as a
    whole (CALL_BOUND), which the publisher's IN_FLIGHT_GRACE relies on."""
    return sqs_http_client(
        region=settings.region,
        endpoint_url=settings.aws_endpoint_url,
        pool=pool,
        max_attempts=FIFO_ATTEMPTS if deduplicated else 1,
        connect_timeout=CONNECT_TIMEOUT,
        read_timeout=READ_TIMEOUT,
    )
