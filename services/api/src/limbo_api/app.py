"""The Starlette application: routes, error shape, request metrics."""

from __future__ import annotations

import asyncio
import time
import uuid
from collections.abc import AsyncIterator
from contextlib import asynccontextmanager
from importlib.metadata import version

from starlette.applications import Starlette
from starlette.requests import ClientDisconnect, Request
from starlette.responses import JSONResponse, Response
from starlette.routing import Route
from starlette.types import ASGIApp, Message, Receive, Scope, Send

from limbo_shared.http import metrics_response, problem
from limbo_shared.logs import bind_message, get_logger
from limbo_shared.queue import QueueUnavailable, SqsQueue
from limbo_shared.schema import QueuedMail
from limbo_shared.store import StoreUnavailable

from .access import DEFAULT_OWNER, AccessControl, owner_of
from .admission import Admission
from .answers import lookup_refused, store_unavailable, submission_refused
from .auth import load_api_keys
from .ledger import IDEMPOTENCY_HEADER, Ledger, Refusal, Ticket, open_ledger
from .metrics import ApiMetrics
from .openapi import openapi_document
from .publisher import MAX_BODY_BYTES, Publisher, PublishFailed
from .ratelimit import TokenBuckets
from .senders import SenderPolicy
from .settings import ApiSettings
from .streams import StreamRouter
from .tracing import BoundedTraceHeaders, instrument_app
from .validation import InvalidMail, parse_mail

__all__ = ["DEFAULT_OWNER", "create_app"]

log = get_logger("limbo.api")

_JSON_TYPES = ("application/json", "text/json")
# Readiness is asked every few seconds by each probe; one SQS call per window is enough.
_READY_CACHE_SECONDS = 2.0
# A probe's answer within this, even while the queue stalls (kubelet's default probe
# timeout is 1 s; the check itself goes on in the background and is reused).
_READY_TIMEOUT_SECONDS = 1.0


class _TooLarge(Exception):
    pass


async def _read_body(request: Request, limit: int, timeout: float) -> bytes:
    declared = request.headers.get("content-length")
    if declared is not None and declared.isdigit() and int(declared) > limit:
        raise _TooLarge
    chunks = []
    size = 0
    # A client trickling its body (or stopping halfway) must not hold the request.
    async with asyncio.timeout(timeout):
        async for chunk in request.stream():
            size += len(chunk)
            if size > limit:
                raise _TooLarge
            chunks.append(chunk)
    return b"".join(chunks)


class _Readiness:
    """The queue's reachability for /ready: cached, bounded in time, one check at a time.

    A stalled queue (packets dropped) would otherwise hold each probe for the SQS
    client's whole connect + read timeout with retries (15 s and more), and every probe
    would hold a thread of the pool that publishing needs.
    """

    def __init__(self, queue: SqsQueue, timeout: float = _READY_TIMEOUT_SECONDS) -> None:
        self._queue = queue
        self._timeout = timeout
        self._checked_at = float("-inf")
        self._ready = False
        self._check: asyncio.Future[None] | None = None

    async def ready(self) -> bool:
        now = time.monotonic()
        if now - self._checked_at >= _READY_CACHE_SECONDS:
            if self._check is None or self._check.done():
                self._check = asyncio.ensure_future(self._queue.check())
                self._check.add_done_callback(self._late_answer)
            try:
                await asyncio.wait_for(asyncio.shield(self._check), self._timeout)
                self._ready = True
            except QueueUnavailable as error:
                log.warning("queue unreachable", error=str(error))
                self._ready = False
            except TimeoutError:
                log.warning("queue did not answer", timeout=self._timeout)
                self._ready = False
            self._checked_at = time.monotonic()
        return self._ready

    def _late_answer(self, check: asyncio.Future[None]) -> None:
        # A check that answered after its probe gave up still tells the next probes;
        # reading its exception also keeps asyncio from logging it as never retrieved.
        if not check.cancelled() and check.exception() is None:
            self._ready = True


class _RequestMetrics:
    """Counts every request by route template (never by raw path) and status."""

    def __init__(self, app: ASGIApp, metrics: ApiMetrics) -> None:
        self.app = app
        self.metrics = metrics

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] != "http":
            await self.app(scope, receive, send)
            return
        started = time.perf_counter()
        status = 500

        async def send_wrapper(message: Message) -> None:
            nonlocal status
            if message["type"] == "http.response.start":
                status = message["status"]
            await send(message)

        try:
            await self.app(scope, receive, send_wrapper)
        finally:
            route = getattr(scope.get("route"), "path", "unmatched")
            method = scope["method"]
            self.metrics.requests.labels(method, route, str(status)).inc()
            self.metrics.latency.labels(method, route).observe(time.perf_counter() - started)


def create_app(
    settings: ApiSettings,
    queue: SqsQueue,
    metrics: ApiMetrics | None = None,
    ledger: Ledger | None = None,
    bulk_queue: SqsQueue | None = None,
) -> Starlette:
    """Raises ConfigError when the API keys are missing or malformed.

    ``bulk_queue`` is the bulk stream's queue; without it bulk mail goes to ``queue``.
    """
    metrics = metrics or ApiMetrics()
    keys = load_api_keys(settings)
    senders = SenderPolicy.parse(settings.sender_domains, settings.key_sender_domains)
    ledger = ledger or open_ledger(settings)

    def publisher_for(target: SqsQueue) -> Publisher:
        return Publisher(
            target,
            metrics,
            lanes=settings.group_lanes,
            max_in_flight=settings.publish_concurrency,
            timeout=settings.publish_timeout,
        )

    publisher = publisher_for(queue)
    streams = StreamRouter(
        {
            "transactional": publisher,
            "bulk": publisher_for(bulk_queue) if bulk_queue is not None else publisher,
        },
        settings.bulk_key_names,
    )
    readiness = _Readiness(queue)
    document = openapi_document(version("limbo-api"))

    async def hello(request: Request) -> Response:
        return JSONResponse({"hello": "world"})

    async def health(request: Request) -> Response:
        return JSONResponse({"health": "ok"})

    async def ready(request: Request) -> Response:
        if await readiness.ready():
            return JSONResponse({"ready": True, "queue": queue.name})
        return JSONResponse({"ready": False, "queue": queue.name}, status_code=503)

    async def metrics_endpoint(request: Request) -> Response:
        return metrics_response(request)

    async def openapi(request: Request) -> Response:
        return JSONResponse(document)

    async def submit(request: Request) -> Response:
        content_type = request.headers.get("content-type", "").split(";")[0].strip().lower()
        if content_type and content_type not in _JSON_TYPES and not content_type.endswith("+json"):
            return problem(
                415, f"Content-Type {content_type!r} is not supported; send application/json"
            )
        try:
            body = await _read_body(request, settings.max_request_bytes, settings.client_timeout)
        except TimeoutError:
            return problem(
                408,
                f"the body did not arrive within CLIENT_TIMEOUT={settings.client_timeout:g}s",
                headers={"Connection": "close"},
            )
        except _TooLarge:
            return problem(
                413, f"body is larger than MAX_REQUEST_BYTES={settings.max_request_bytes}"
            )
        except ClientDisconnect:
            return problem(400, "the client went away before the body was complete")
        try:
            mail_request = parse_mail(body)
        except InvalidMail as error:
            return problem(error.status, error.problem)
        owner = owner_of(request)
        if not senders.allows(owner, mail_request.from_):
            allowed = ", ".join(sorted(senders.allowed(owner) or ()))
            return problem(403, f"from: this API key may send only from these domains: {allowed}")
        envelope = QueuedMail(
            id=str(uuid.uuid4()),
            owner=owner,
            submitted_at=time.time(),
            stream=streams.stream_of(owner, mail_request.stream),
            mail=mail_request,
        )
        try:
            queue_body = envelope.to_json()
        except ValueError:
            return problem(400, "body contains text that is not valid Unicode (a lone surrogate)")
        if len(queue_body.encode()) > MAX_BODY_BYTES:
            return problem(
                413, f"message is larger than one queue message allows ({MAX_BODY_BYTES} bytes)"
            )
        ticket = await ledger.begin(
            owner, request.headers.get(IDEMPOTENCY_HEADER), mail_request, envelope.id
        )
        if not isinstance(ticket, Ticket):
            return submission_refused(ticket)
        message_id = ticket.message_id
        if message_id != envelope.id:
            # A repeat taking over an earlier request's id (all ids are UUIDs: same size).
            envelope = envelope.model_copy(update={"id": message_id})
            queue_body = envelope.to_json()
        with bind_message(message_id=message_id):
            try:
                async with ledger.recording(ticket, envelope):
                    await streams.publisher(envelope.stream).publish(envelope, queue_body)
            except StoreUnavailable as error:
                log.warning("not queued: status store unavailable", error=str(error))
                return store_unavailable()
            except PublishFailed as failure:
                log.warning("not queued", reason=failure.reason)
                if failure.retryable:
                    return problem(
                        503, "the queue is unavailable; retry later", headers={"Retry-After": "5"}
                    )
                return problem(400, f"the queue refused the message: {failure.reason}")
            log.info("queued", recipients=mail_request.recipient_count, stream=envelope.stream)
        return JSONResponse({"Message": "submitted", "id": message_id})

    async def status(request: Request) -> Response:
        message_id = request.path_params["message_id"]
        record = await ledger.lookup(owner_of(request), message_id)
        if isinstance(record, Refusal):
            return lookup_refused(record, message_id)
        return JSONResponse(record.public())

    @asynccontextmanager
    async def lifespan(app: Starlette) -> AsyncIterator[None]:
        yield
        await streams.aclose()
        await ledger.aclose()

    app = Starlette(
        routes=[
            Route("/", hello),
            Route("/health", health),
            Route("/ready", ready),
            Route("/metrics", metrics_endpoint),
            Route("/openapi.json", openapi),
            Route("/v1/mail", submit, methods=["POST"]),
            Route("/v1/mail/{message_id}", status, methods=["GET"]),
        ],
        lifespan=lifespan,
    )
    # `/v1/mail/` would otherwise answer 307 to a URL built from the client's Host header.
    app.router.redirect_slashes = False

    async def not_found(request: Request, exc: Exception) -> Response:
        return JSONResponse(
            {"Message": "not found", "Problem": f"no route {request.url.path}"}, status_code=404
        )

    async def not_allowed(request: Request, exc: Exception) -> Response:
        # RFC 9110 requires Allow on a 405; Starlette's exception carries it.
        return JSONResponse(
            {"Message": "not submitted", "Problem": f"method {request.method} is not allowed here"},
            status_code=405,
            headers=getattr(exc, "headers", None),
        )

    app.add_exception_handler(404, not_found)
    app.add_exception_handler(405, not_allowed)
    instrument_app(app)
    limiter = None
    if settings.rate_limit:
        limiter = TokenBuckets(settings.rate_limit, settings.rate_burst)
    app.add_middleware(AccessControl, keys=keys, limiter=limiter)
    # Before the key check: an unauthenticated flood is bounded too.
    app.add_middleware(Admission, limit=settings.max_concurrent_requests)
    app.add_middleware(_RequestMetrics, metrics=metrics)
    # Outermost: no layer (tracing included) sees an oversize client trace header.
    app.add_middleware(BoundedTraceHeaders)
    app.state.publisher = publisher
    app.state.streams = streams
    app.state.ledger = ledger
    app.state.api_keys = keys
    app.state.senders = senders
    return app
