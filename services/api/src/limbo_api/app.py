"""The Starlette application: routes, error shape, request metrics."""

from __future__ import annotations

import time
import uuid
from collections.abc import AsyncIterator
from contextlib import asynccontextmanager
from importlib.metadata import version

from opentelemetry.instrumentation.asgi import OpenTelemetryMiddleware
from opentelemetry.instrumentation.starlette import StarletteInstrumentor
from starlette.applications import Starlette
from starlette.requests import ClientDisconnect, Request
from starlette.responses import JSONResponse, Response
from starlette.routing import Route
from starlette.types import ASGIApp, Message, Receive, Scope, Send

from limbo_shared.http import metrics_response, problem
from limbo_shared.logs import bind_message, get_logger
from limbo_shared.queue import QueueUnavailable, SqsQueue
from limbo_shared.schema import QueuedMail

from .metrics import ApiMetrics
from .openapi import openapi_document
from .publisher import MAX_BODY_BYTES, PublishFailed, Publisher
from .settings import ApiSettings
from .validation import InvalidMail, parse_mail

__all__ = ["create_app"]

log = get_logger("limbo.api")

DEFAULT_OWNER = "default"
_JSON_TYPES = ("application/json", "text/json")
# Readiness is asked every few seconds by each probe; one SQS call per window is enough.
_READY_CACHE_SECONDS = 2.0


class _TooLarge(Exception):
    pass


async def _read_body(request: Request, limit: int) -> bytes:
    declared = request.headers.get("content-length")
    if declared is not None and declared.isdigit() and int(declared) > limit:
        raise _TooLarge
    chunks = []
    size = 0
    async for chunk in request.stream():
        size += len(chunk)
        if size > limit:
            raise _TooLarge
        chunks.append(chunk)
    return b"".join(chunks)


class _Readiness:
    def __init__(self, queue: SqsQueue) -> None:
        self._queue = queue
        self._checked_at = float("-inf")
        self._ready = False

    async def ready(self) -> bool:
        now = time.monotonic()
        if now - self._checked_at >= _READY_CACHE_SECONDS:
            try:
                await self._queue.check()
                self._ready = True
            except QueueUnavailable as error:
                log.warning("queue unreachable", error=str(error))
                self._ready = False
            self._checked_at = time.monotonic()
        return self._ready


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


def _without_asgi_event_spans(app: Starlette) -> None:
    """Keep the server span per request, drop its internal ``http receive``/``http send`` children.

    They are three extra spans per POST that say nothing the server span does not, and
    they were a fifth of the API's CPU per request (bench/, in-process profile). The
    Starlette instrumentor does not pass ``exclude_spans`` on, so it is set on its
    middleware entry before the middleware stack is built (at the first request).
    """
    for entry in app.user_middleware:
        if getattr(entry, "cls", None) is OpenTelemetryMiddleware:
            entry.kwargs["exclude_spans"] = ["receive", "send"]


def create_app(settings: ApiSettings, queue: SqsQueue, metrics: ApiMetrics | None = None) -> Starlette:
    metrics = metrics or ApiMetrics()
    publisher = Publisher(
        queue, metrics, lanes=settings.group_lanes, max_in_flight=settings.publish_concurrency,
        timeout=settings.publish_timeout,
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
            return problem(415, f"Content-Type {content_type!r} is not supported; send application/json")
        try:
            body = await _read_body(request, settings.max_request_bytes)
        except _TooLarge:
            return problem(413, f"body is larger than MAX_REQUEST_BYTES={settings.max_request_bytes}")
        except ClientDisconnect:
            return problem(400, "the client went away before the body was complete")
        try:
            mail_request = parse_mail(body)
        except InvalidMail as error:
            return problem(error.status, error.problem)
        message_id = str(uuid.uuid4())
        envelope = QueuedMail(
            id=message_id, owner=DEFAULT_OWNER, submitted_at=time.time(), mail=mail_request
        )
        try:
            queue_body = envelope.to_json()
        except ValueError:
            return problem(400, "body contains text that is not valid Unicode (a lone surrogate)")
        if len(queue_body.encode()) > MAX_BODY_BYTES:
            return problem(413, f"message is larger than one queue message allows ({MAX_BODY_BYTES} bytes)")
        with bind_message(message_id=message_id):
            try:
                await publisher.publish(envelope, queue_body)
            except PublishFailed as failure:
                log.warning("not queued", reason=failure.reason)
                if failure.retryable:
                    return problem(503, "the queue is unavailable; retry later",
                                   headers={"Retry-After": "5"})
                return problem(400, f"the queue refused the message: {failure.reason}")
            log.info("queued", recipients=mail_request.recipient_count)
        return JSONResponse({"Message": "submitted", "id": message_id})

    @asynccontextmanager
    async def lifespan(app: Starlette) -> AsyncIterator[None]:
        yield
        await publisher.aclose()

    app = Starlette(
        routes=[
            Route("/", hello),
            Route("/health", health),
            Route("/ready", ready),
            Route("/metrics", metrics_endpoint),
            Route("/openapi.json", openapi),
            Route("/v1/mail", submit, methods=["POST"]),
        ],
        lifespan=lifespan,
    )

    async def not_found(request: Request, exc: Exception) -> Response:
        return JSONResponse({"Message": "not found", "Problem": f"no route {request.url.path}"},
                            status_code=404)

    async def not_allowed(request: Request, exc: Exception) -> Response:
        return JSONResponse({"Message": "not submitted",
                             "Problem": f"method {request.method} is not allowed here"},
                            status_code=405)

    app.add_exception_handler(404, not_found)
    app.add_exception_handler(405, not_allowed)
    StarletteInstrumentor.instrument_app(app)
    _without_asgi_event_spans(app)
    app.add_middleware(_RequestMetrics, metrics=metrics)  # type: ignore[arg-type]
    app.state.publisher = publisher
    return app
