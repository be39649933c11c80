"""``limbo-api``: serve the HTTP API until SIGTERM, then publish what was accepted."""

from __future__ import annotations

import signal
from types import FrameType

import uvicorn
from uvicorn.config import STARTUP_FAILURE

from limbo_shared.config import ConfigError, exit_with_config_error
from limbo_shared.logs import get_logger
from limbo_shared.queue import SqsQueue
from limbo_shared.serving import Server
from limbo_shared.startup import settings_or_exit, settle_heap, start_observability

from .admission import PROBE_HEADROOM
from .app import create_app
from .auth import ApiKeys
from .protocol import bounded_protocol
from .senders import SenderPolicy
from .settings import ApiSettings
from .sqs_client import publishing_client

PROGRAM = "limbo-api"
log = get_logger("limbo.api")


def _exit_after_cleanup(signum: int, frame: FrameType | None) -> None:
    # uvicorn shuts down gracefully on SIGTERM, then restores the previous handler and
    # raises the signal again. With the default handler that kills the process on the
    # spot: the finally below never ran, buffered spans were lost and the exit code was
    # 143. Exiting through SystemExit runs it and exits 0.
    raise SystemExit(0)


def main() -> None:
    settings = settings_or_exit(PROGRAM, ApiSettings)
    telemetry = start_observability(PROGRAM, settings)
    pool = settings.publish_concurrency + 4
    try:
        client = publishing_client(settings, pool, deduplicated=True)
        queue = SqsQueue(client, settings.queue)
        bulk_queue = SqsQueue(client, settings.bulk_queue) if settings.bulk_queue else None
        app = create_app(settings, queue, bulk_queue=bulk_queue, spans_recorded=telemetry.exporting)
    except ConfigError as error:
        exit_with_config_error(PROGRAM, error)
    _announce(settings, app.state.api_keys, app.state.senders)
    log.info(
        "listening",
        port=settings.port,
        queue=queue.name,
        bulk_queue=bulk_queue.name if bulk_queue else "(shares QUEUE)",
        tracing=telemetry.exporting,
    )
    for sig in (signal.SIGTERM, signal.SIGINT):
        signal.signal(sig, _exit_after_cleanup)
    settle_heap()
    try:
        # limbo's Server: uvicorn's, with a once-a-second tick (limbo_shared.serving).
        config = uvicorn.Config(
            app,
            host=settings.host,
            port=settings.port,
            log_config=None,
            access_log=False,
            # Slow or stalled clients cannot hold a connection open for long: idle
            # keep-alive connections close after 5 s, a request head must arrive within
            # CLIENT_TIMEOUT (uvicorn has no such bound), and its body too (app.py).
            timeout_keep_alive=5,
            timeout_graceful_shutdown=20,
            # The app admits MAX_CONCURRENT_REQUESTS to its working routes; uvicorn's
            # bound above that keeps room for /health and /ready (admission.py).
            limit_concurrency=settings.max_concurrent_requests + PROBE_HEADROOM,
            loop="uvloop",
            http=bounded_protocol(settings.client_timeout),
        )
        server = Server(config)
        server.run()
        if not server.started:  # as uvicorn.run: the app's start-up failed
            raise SystemExit(STARTUP_FAILURE)
    finally:
        telemetry.shutdown()


def _announce(settings: ApiSettings, keys: ApiKeys | None, senders: SenderPolicy) -> None:
    """Say at start-up what an operator must not discover later: open API, no tracking,
    any sender."""
    if senders.default is None:
        log.warning(
            "SENDER_DOMAINS is unset: a client may send from any domain "
            "(set it, or * to allow any on purpose)"
        )
    if keys is None:
        log.warning(
            "authentication is off (AUTH=disabled): anyone who can reach the API can "
            "send mail, all of it as owner 'default', without rate limits"
        )
    else:
        log.info(
            "API keys loaded",
            names=keys.names,
            rate_limit=settings.rate_limit or "off",
            rate_burst=settings.rate_burst,
        )
    if settings.status_table is None:
        log.warning(
            "message tracking is off (STATUS_TABLE is unset): no GET /v1/mail/{id}, "
            "no Idempotency-Key, and delivery is at-least-once"
        )
    else:
        log.info(
            "message tracking is on", table=settings.status_table, ttl_days=settings.status_ttl_days
        )


if __name__ == "__main__":
    main()
