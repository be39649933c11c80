"""The whole life of a consumer process: ``run_consumer`` for any handler, ``run_worker``
for a sending provider. A new service is a handler and a ``main`` calling one of them."""

from __future__ import annotations

import asyncio
import logging
import os
import signal
import socket
import sys
from collections.abc import Callable, Coroutine
from typing import TYPE_CHECKING, Any, TypeVar

from botocore.client import BaseClient

from ..aws import OnFirstUse, make_client
from ..config import ConfigError, exit_with_config_error, load_settings
from ..logs import get_logger
from ..payload import PayloadStore
from ..provider import Provider, RatedProvider
from ..queue import QueueUnavailable, SqsQueue
from ..startup import settle_heap, start_observability
from .consumer import RECEIVE_BATCH, Consumer, Handler, SourceQueue, max_receive_count
from .health import CallWindow
from .mail import MailHandler
from .metrics import WorkerMetrics
from .queue_metrics import export_queue_depth
from .ratelimit import RateLimiter
from .router import Router
from .routing import Failover, FailoverRules
from .server import health_server
from .settings import ConsumerSettings, WorkerSettings
from .streams import bulk_settings, stream_consumers
from .threads import DaemonThreadPool
from .tracking import NoTracking, StoreTracking, Tracker

if TYPE_CHECKING:
    from types_boto3_sqs import SQSClient

    from ..sqs_http import SqsHttpClient

__all__ = ["run_consumer", "run_worker"]

log = get_logger("limbo.worker")

S = TypeVar("S", bound=ConsumerSettings)
ProviderFactory = Callable[[WorkerSettings], Provider]
# Builds the handler once the queue's maxReceiveCount is known.
_Build = Callable[[int], Handler]
# What else runs beside the consumers (routing), given them and their queues.
_Attach = Callable[[list[Consumer], list[SourceQueue]], list[Coroutine[Any, Any, None]]]


def run_consumer(
    program: str, handler_factory: Callable[[S], Handler], settings_cls: type[S]
) -> None:
    """Read ``settings_cls``, build the handler, consume until SIGTERM, drain, exit 0."""
    try:
        settings = load_settings(settings_cls)
        handler = handler_factory(settings)
    except ConfigError as error:
        exit_with_config_error(program, error)
    _run(program, settings, lambda max_attempts: handler)


def run_worker(program: str, provider_factory: ProviderFactory) -> None:
    """Read settings, build the provider, send until SIGTERM, drain, exit 0."""
    try:
        settings = load_settings(WorkerSettings)
        provider = provider_factory(settings)
        policy = settings.policy
        if policy is not None and provider.name not in policy:
            raise ConfigError(
                f"ROUTING is invalid: {settings.routing} does not name this worker's "
                f"provider ({provider.name})"
            )
    except ConfigError as error:
        exit_with_config_error(program, error)
    calls = CallWindow(settings.failover_window) if policy else None
    router: Router | None = None

    def build(max_attempts: int) -> Handler:
        nonlocal router
        # Offloaded payloads are read from the bucket their pointer names.
        region, endpoint = settings.region, settings.aws_endpoint_url
        s3 = OnFirstUse(lambda: make_client("s3", region=region, endpoint_url=endpoint))
        handler = MailHandler(
            settings,
            provider,
            tracker=_tracker(settings, provider),
            metrics=WorkerMetrics(provider.name),
            max_attempts=max_attempts,
            payloads=PayloadStore(s3, DaemonThreadPool(4, "s3")),
            limiter=_limiter(settings, provider),
            calls=calls,
            fallback=policy is not None and policy[-1] != provider.name,
        )
        if calls is not None:
            router = _router(settings, handler, calls)
        return handler

    def attach(
        consumers: list[Consumer], queues: list[SourceQueue]
    ) -> list[Coroutine[Any, Any, None]]:
        if router is None:
            return []
        # One decision for the worker: standing by, it receives from no stream.
        for consumer in consumers:
            consumer.hold_while(router.standby)
        return [router.run(lambda: _mail_waiting(queues))]

    _run(program, settings, build, mail=True, attach=attach)


def _run(
    program: str,
    settings: ConsumerSettings,
    build: _Build,
    *,
    mail: bool = False,
    attach: _Attach | None = None,
) -> None:
    telemetry = start_observability(program, settings)
    if not mail:
        # Streams and moved retries are the mail queues' (FIFO); another consumer (the
        # webhook worker, on a standard queue) reads its QUEUE alone and retries in place.
        settings = settings.model_copy(update={"bulk_queue": None, "retry_moves": False})
    serve: Coroutine[Any, Any, None] = _serve(settings, build, attach, on_loop=mail)
    try:
        try:
            import uvloop

            uvloop.run(serve)
        except ImportError:  # pragma: no cover - uvloop is a dependency; asyncio works too
            asyncio.run(serve)
    except ConfigError as error:  # found while opening the queue's client
        exit_with_config_error(program, error)
    finally:
        telemetry.shutdown()
    log.info("stopped")
    _exit_at_once()


def _exit_at_once() -> None:
    """Exit 0 now that everything is settled, flushed and exported.

    What the interpreter would still do is tear down its modules (botocore's service
    models are large): 1-2 s on a loaded 2-core machine, most of an idle worker's time
    from SIGTERM to exit. Every message is settled, spans are exported and the SQS
    calls still running are only abandoned long polls, so nothing is lost by skipping it.
    """
    logging.shutdown()
    sys.stdout.flush()
    sys.stderr.flush()
    os._exit(0)


async def _serve(
    settings: ConsumerSettings, build: _Build, attach: _Attach | None, *, on_loop: bool
) -> None:
    """``on_loop``: call SQS from the event loop (the mail workers' images carry
    aiohttp); otherwise through boto3 on threads (the events and webhooks consumers)."""
    # Transactional first: its consumer has CONCURRENCY slots of its own; the bulk
    # stream's consumer (with BULK_QUEUE) has BULK_CONCURRENCY more, never one of those.
    bulk = bulk_settings(settings)
    receivers = sum(
        max(1, -(-s.concurrency // RECEIVE_BATCH)) for s in (settings, bulk) if s is not None
    )
    # On threads, each receiver holds one for its long poll; the rest settle and
    # dead-letter. Daemon threads: a stopping consumer abandons its long polls instead
    # of waiting. On the loop an abandoned long poll is a task the exit leaves behind.
    executor = DaemonThreadPool(receivers + 8, "sqs")
    client: SQSClient | SqsHttpClient
    if on_loop:
        from ..sqs_http import sqs_http_client

        client = sqs_http_client(
            region=settings.region,
            endpoint_url=settings.aws_endpoint_url,
            read_timeout=settings.wait_time_seconds + 10,
            pool=receivers + 8,
        )
    else:
        client = make_client(
            "sqs",
            region=settings.region,
            endpoint_url=settings.aws_endpoint_url,
            read_timeout=settings.wait_time_seconds + 10,
            max_pool_connections=receivers + 8,
        )
    queue = SqsQueue(client, settings.queue, executor)
    dead_letters = (
        SqsQueue(client, settings.deadletterqueue, executor) if settings.deadletterqueue else None
    )
    max_attempts = await max_receive_count(queue, settings.max_attempts)
    handler = build(max_attempts)
    bulk_queue = SqsQueue(client, bulk.queue, executor) if bulk is not None else None
    consumers = stream_consumers(
        handler,
        settings,
        lambda url: bulk_queue if bulk_queue is not None and url == bulk_queue.url else queue,
        dead_letters,
        max_attempts=max_attempts,
    )
    loop = asyncio.get_running_loop()

    def stop() -> None:
        for consumer in consumers:
            consumer.stop()

    for sig in (signal.SIGTERM, signal.SIGINT):
        loop.add_signal_handler(sig, stop)
    server = health_server(settings.port, lambda: all(consumer.ready for consumer in consumers))
    server_task = asyncio.create_task(server.serve())
    sources: list[SourceQueue] = [queue, *([bulk_queue] if bulk_queue else [])]
    background: list[asyncio.Task[None]] = [
        asyncio.create_task(work) for work in (attach(consumers, sources) if attach else [])
    ]
    if settings.queue_metrics_interval > 0:
        queues = (
            {"queue": queue}
            | ({"bulk_queue": bulk_queue} if bulk_queue else {})
            | ({"dead_letter": dead_letters} if dead_letters else {})
        )
        depth = export_queue_depth(queues, settings.queue_metrics_interval)
        background.append(asyncio.create_task(depth, name="queue-depth"))
    settle_heap()
    try:
        await asyncio.gather(*(consumer.run() for consumer in consumers))
    finally:
        server.exit()
        for task in background:
            task.cancel()
        await handler.aclose()
        await asyncio.gather(server_task, return_exceptions=True)
        executor.shutdown(wait=False, cancel_futures=True)
        if not isinstance(client, BaseClient):
            await client.aclose()


def _tracker(settings: WorkerSettings, provider: Provider) -> Tracker:
    if settings.status_table is None:
        log.warning(
            "message tracking is off (STATUS_TABLE is unset): no status records, and a message "
            "redelivered after a crash may be sent twice"
        )
        return NoTracking()
    from ..store import MessageStore, open_table
    from ..webhooks import open_notifier

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
    notifier = open_notifier(
        settings, table, region=settings.region, endpoint_url=settings.aws_endpoint_url
    )
    return StoreTracking(
        store, provider=provider.name, send_timeout=settings.send_timeout, notifier=notifier
    )


def _limiter(settings: WorkerSettings, provider: Provider) -> RateLimiter | None:
    """The shared send rate, kept in the status table; none without a table or a rate."""
    if not isinstance(provider, RatedProvider):
        return None
    if settings.status_table is None:
        log.warning(
            "no shared send-rate limit (STATUS_TABLE is unset): each replica may send at "
            "the provider's whole rate"
        )
        return None
    from ..store import open_table
    from ..store.bucket import SharedBucket

    table = open_table(
        settings.status_table,
        region=settings.region,
        endpoint_url=settings.aws_endpoint_url,
        threads=2,
    )
    return RateLimiter(
        provider.name,
        SharedBucket(table, provider.name),
        provider.max_send_rate,
        max_wait=settings.rate_limit_max_wait,
        refresh=settings.send_rate_refresh,
    )


def _router(settings: WorkerSettings, handler: MailHandler, calls: CallWindow) -> Router:
    """This worker's part in ROUTING: its reports on the health board, its standby."""
    from ..store import open_table
    from ..store.health import HealthBoard

    assert settings.policy is not None and settings.status_table is not None
    table = open_table(
        settings.status_table,
        region=settings.region,
        endpoint_url=settings.aws_endpoint_url,
        threads=2,
    )
    # Three intervals without a report: that replica is gone (or cannot reach the table).
    board = HealthBoard(table, stale=3 * settings.health_interval)
    rules = FailoverRules(
        error_rate=settings.failover_error_rate,
        min_sends=settings.failover_min_sends,
        hold=settings.failover_hold,
        absent_after=3 * settings.health_interval,
    )
    return Router(
        Failover(settings.policy, handler.name, rules),
        board,
        calls,
        replica=f"{socket.gethostname()}-{os.getpid()}",
        interval=settings.health_interval,
        paused=lambda: not handler.provider_circuit.is_closed,
    )


async def _mail_waiting(queues: list[SourceQueue]) -> bool:
    """Visible messages in any stream's queue; False when SQS does not say (stay as we are)."""
    for queue in queues:
        try:
            attributes = await queue.attributes("ApproximateNumberOfMessages")
        except QueueUnavailable:
            continue
        if int(attributes.get("ApproximateNumberOfMessages", "0")) > 0:
            return True
    return False
