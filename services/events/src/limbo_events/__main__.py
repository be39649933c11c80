"""``limbo-events``: apply delivery events from the events queue until SIGTERM."""

from __future__ import annotations

import asyncio
import signal
from concurrent.futures import ThreadPoolExecutor

import uvicorn

from limbo_shared.aws import make_client
from limbo_shared.config import ConfigError, exit_with_config_error, load_settings
from limbo_shared.events import EventSource, MailgunEventSource, SesEventSource, SnsVerifier
from limbo_shared.logs import get_logger, setup_logging
from limbo_shared.queue import SqsQueue
from limbo_shared.store import DeliveryOutcomes, MessageStore, Suppressions, open_table
from limbo_shared.telemetry import setup_telemetry
from limbo_shared.worker.server import QuietServer, health_app

from .consumer import Consumer
from .handler import EventsHandler
from .settings import EventsSettings

PROGRAM = "limbo-events"
log = get_logger("limbo.events")


def sources(settings: EventsSettings) -> dict[str, EventSource]:
    found: dict[str, EventSource] = {"mailgun": MailgunEventSource()}
    if settings.ses_events_topic_arn is not None:
        verifier = SnsVerifier(
            settings.ses_events_topic_arn, verify_signatures=settings.sns_verify_signatures
        )
        found["ses"] = SesEventSource(verifier)
    return found


def main() -> None:
    try:
        settings = load_settings(EventsSettings)
        if settings.status_table is None:
            raise ConfigError("STATUS_TABLE is not set: events are applied to the status table")
    except ConfigError as error:
        exit_with_config_error(PROGRAM, error)
    setup_logging(settings.log_format, settings.log_level)
    try:
        telemetry = setup_telemetry(PROGRAM)
    except ConfigError as error:
        exit_with_config_error(PROGRAM, error)
    if settings.ses_events_topic_arn is None:
        log.warning("SES_EVENTS_TOPIC_ARN is unset: SES events are refused")
    elif not settings.sns_verify_signatures:
        log.warning("SNS signatures are not verified (SNS_VERIFY_SIGNATURES=false)")
    try:
        asyncio.run(_serve(settings))
    finally:
        telemetry.shutdown()
    log.info("stopped")


async def _serve(settings: EventsSettings) -> None:
    assert settings.status_table is not None
    pollers = max(1, -(-settings.concurrency // 10))
    executor = ThreadPoolExecutor(pollers + 4, thread_name_prefix="sqs")
    client = make_client(
        "sqs",
        region=settings.region,
        endpoint_url=settings.aws_endpoint_url,
        read_timeout=settings.wait_time_seconds + 10,
        max_pool_connections=pollers + 4,
    )
    queue = SqsQueue(client, settings.events_queue, executor)
    table = open_table(
        settings.status_table,
        region=settings.region,
        endpoint_url=settings.aws_endpoint_url,
        threads=min(32, settings.concurrency),
    )
    handler = EventsHandler(
        queue_name=queue.name,
        sources=sources(settings),
        messages=MessageStore(table, ttl_days=settings.status_ttl_days),
        outcomes=DeliveryOutcomes(table, ttl_days=settings.status_ttl_days),
        suppressions=Suppressions(table),
        retry_seconds=settings.retry_seconds,
    )
    consumer = Consumer(
        queue, handler, concurrency=settings.concurrency, wait_seconds=settings.wait_time_seconds
    )
    loop = asyncio.get_running_loop()
    for sig in (signal.SIGTERM, signal.SIGINT):
        loop.add_signal_handler(sig, consumer.stop)
    server = QuietServer(
        uvicorn.Config(
            health_app(lambda: consumer.ready and not consumer.stopping),
            host="0.0.0.0",
            port=settings.port,
            log_config=None,
            lifespan="off",
            access_log=False,
        )
    )
    server_task = asyncio.create_task(server.serve())
    try:
        await consumer.run(settings.shutdown_grace)
    finally:
        server.should_exit = True
        await handler.aclose()
        table.close()
        await asyncio.gather(server_task, return_exceptions=True)
        executor.shutdown(wait=False, cancel_futures=True)


if __name__ == "__main__":
    main()
