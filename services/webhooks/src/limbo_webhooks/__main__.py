"""``limbo-webhooks``: deliver webhook jobs from WEBHOOK's queue until SIGTERM."""

from __future__ import annotations

from concurrent.futures import ThreadPoolExecutor

from limbo_shared.aws import make_client
from limbo_shared.queue import SqsQueue
from limbo_shared.store import open_table
from limbo_shared.webhooks import EndpointRegistry
from limbo_shared.worker.main import run_consumer

from .handler import WebhookHandler
from .settings import WebhookSettings
from .transport import Deliverer

PROGRAM = "limbo-webhooks"


def build(settings: WebhookSettings) -> WebhookHandler:
    table = open_table(
        settings.status_table,
        region=settings.region,
        endpoint_url=settings.aws_endpoint_url,
        threads=min(32, settings.concurrency),
    )
    # Re-sends (retries, hops) on a client of their own, never behind the long polls.
    client = make_client(
        "sqs",
        region=settings.region,
        endpoint_url=settings.aws_endpoint_url,
        max_pool_connections=8,
    )
    queue = SqsQueue(client, settings.queue, ThreadPoolExecutor(8, thread_name_prefix="requeue"))
    deliverer = Deliverer(
        settings.destinations,
        timeout=settings.webhook_timeout,
        max_response_bytes=settings.webhook_max_response_bytes,
        max_connections=settings.concurrency,
    )
    return WebhookHandler(settings, EndpointRegistry(table), queue, deliverer)


def main() -> None:
    run_consumer(PROGRAM, build, WebhookSettings)


if __name__ == "__main__":
    main()
