"""``run_worker``: the whole life of a worker process, for any provider."""

from __future__ import annotations

import asyncio
import signal
from collections.abc import Callable
from concurrent.futures import ThreadPoolExecutor

import uvicorn

from ..aws import make_client
from ..config import ConfigError, exit_with_config_error, load_settings
from ..logs import get_logger, setup_logging
from ..payload import PayloadStore
from ..provider import Provider
from ..queue import SqsQueue
from ..telemetry import setup_telemetry
from .metrics import WorkerMetrics
from .runtime import RECEIVE_BATCH, Worker
from .server import QuietServer, health_app
from .settings import WorkerSettings
from .tracking import NoTracking, StoreTracking, Tracker

__all__ = ["run_worker"]

log = get_logger("limbo.worker")

ProviderFactory = Callable[[WorkerSettings], Provider]


def run_worker(program: str, provider_factory: ProviderFactory) -> None:
    """Read settings, build the provider, run until SIGTERM, drain, exit 0."""
    try:
        settings = load_settings(WorkerSettings)
        provider = provider_factory(settings)
    except ConfigError as error:
        exit_with_config_error(program, error)
    setup_logging(settings.log_format, settings.log_level)
    try:
        telemetry = setup_telemetry(program)
    except ConfigError as error:
        exit_with_config_error(program, error)
    try:
        import uvloop

        uvloop.run(_serve(settings, provider))
    except ImportError:  # pragma: no cover - uvloop is a dependency; plain asyncio still works
        asyncio.run(_serve(settings, provider))
    finally:
        telemetry.shutdown()
    log.info("stopped")


async def _serve(settings: WorkerSettings, provider: Provider) -> None:
    receivers = max(1, -(-settings.concurrency // RECEIVE_BATCH))
    # Each receiver holds a thread for its long poll; the rest settle and dead-letter.
    executor = ThreadPoolExecutor(max_workers=receivers + 8, thread_name_prefix="sqs")
    client = make_client(
        "sqs",
        region=settings.region,
        endpoint_url=settings.aws_endpoint_url,
        read_timeout=settings.wait_time_seconds + 10,
        max_pool_connections=receivers + 8,
    )
    tracker = _tracker(settings, provider)
    # Offloaded payloads are read from the bucket their pointer names.
    s3 = make_client("s3", region=settings.region, endpoint_url=settings.aws_endpoint_url)
    worker = Worker(
        settings,
        provider,
        SqsQueue(client, settings.queue, executor),
        SqsQueue(client, settings.deadletterqueue, executor),
        WorkerMetrics(provider.name),
        tracker,
        PayloadStore(s3, executor),
    )
    loop = asyncio.get_running_loop()
    for sig in (signal.SIGTERM, signal.SIGINT):
        loop.add_signal_handler(sig, worker.stop)
    server = QuietServer(
        uvicorn.Config(
            health_app(lambda: worker.ready and not worker.stopping),
            host="0.0.0.0",
            port=settings.port,
            log_config=None,
            lifespan="off",
            access_log=False,
        )
    )
    server_task = asyncio.create_task(server.serve())
    try:
        await worker.load_redrive_policy()
        await worker.run()
    finally:
        server.should_exit = True
        await provider.aclose()
        await tracker.aclose()
        await asyncio.gather(server_task, return_exceptions=True)
        executor.shutdown(wait=False, cancel_futures=True)


def _tracker(settings: WorkerSettings, provider: Provider) -> Tracker:
    if settings.status_table is None:
        log.warning(
            "message tracking is off (STATUS_TABLE is unset): no status records, and a message "
            "redelivered after a crash may be sent twice"
        )
        return NoTracking()
    from ..store import MessageStore, open_table

    log.info("message tracking is on", table=settings.status_table)
    # One thread per possible concurrent claim would be wasteful; claims are short calls.
    threads = min(32, settings.concurrency)
    table = open_table(
        settings.status_table,
        region=settings.region,
        endpoint_url=settings.aws_endpoint_url,
        threads=threads,
    )
    store = MessageStore(table, ttl_days=settings.status_ttl_days)
    return StoreTracking(store, provider=provider.name, send_timeout=settings.send_timeout)
