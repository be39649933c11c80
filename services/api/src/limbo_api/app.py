"""The Starlette application: routes, error shape, request metrics."""

from __future__ import annotations

import asyncio
import time
import uuid
from collections.abc import AsyncIterator
from concurrent.futures import ThreadPoolExecutor
from contextlib import asynccontextmanager
from importlib.metadata import version
from typing import Any

from starlette.applications import Starlette
from starlette.requests import ClientDisconnect, Request
from starlette.responses import JSONResponse, Response
from starlette.routing import Route
from starlette.types import ASGIApp, Message, Receive, Scope, Send

from limbo_shared.aws import make_client
from limbo_shared.config import ConfigError
from limbo_shared.http import metrics_response, problem
from limbo_shared.logs import bind_message, get_logger
from limbo_shared.queue import QueueUnavailable, SqsQueue
from limbo_shared.schema import MailRequest
from limbo_shared.store import StoreUnavailable, WebhookTokens
from limbo_shared.webhooks import EndpointRegistry, EventType, StatusNotifier, open_notifier

from .access import DEFAULT_OWNER, AccessControl, owner_of
from .admission import Admission
from .answers import cancel_answer, lookup_refused, store_unavailable, submission_refused
from .auth import load_api_keys
from .ledger import IDEMPOTENCY_HEADER, Ledger, Refusal, Replay, Ticket, open_ledger
from .mailgun_webhook import MAILGUN_WEBHOOK_PATH, MailgunWebhook
from .metrics import SUPPRESSED_SENDS, ApiMetrics
from .openapi import openapi_document
from .publisher import PublishFailed
from .ratelimit import TokenBuckets
from .routing import path_route
from .senders import SenderPolicy
from .settings import ApiSettings
from .submission import batch_ids, open_submitter
from .suppressing import Split, all_suppressed_problem, without_suppressed
from .suppression_routes import suppression_routes
from .tracing import BoundedTraceHeaders, instrument_app
from .validation import InvalidMail, parse_batch, parse_mail
from .webhooks import webhook_routes

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


class _BatchFailed(Exception):
    def __init__(self, problem: str, *, retryable: bool) -> None:
        super().__init__(problem)
        self.problem = problem
        self.retryable = retryable


def _raise_for_failures(results: list[str | BaseException], indices: list[int], total: int) -> None:
    """Raise _BatchFailed naming the messages that were not queued, if any (``indices``
    are the batch positions of ``results``)."""
    failed = [(indices[i], r) for i, r in enumerate(results) if isinstance(r, BaseException)]
    if not failed:
        return
    for _, error in failed:
        if not isinstance(error, PublishFailed):
            raise error
    where = ", ".join(f"[{i}]" for i, _ in failed[:10]) + (" ..." if len(failed) > 10 else "")
    first = failed[0][1]
    reason = first.reason if isinstance(first, PublishFailed) else str(first)
    retryable = any(isinstance(e, PublishFailed) and e.retryable for _, e in failed)
    raise _BatchFailed(
        f"{len(failed)} of {total} messages were not queued ({where}): {reason}; "
        "the others were. Retry with the same Idempotency-Key to queue the rest without "
        "sending any twice",
        retryable=retryable,
    )


def _batch_answer(batch_id: str, splits: list[Split]) -> dict[str, Any]:
    """One id per email in order, null for an email refused because every To recipient
    is suppressed; with suppressed recipients, which (per email) and the refusals."""
    ids = batch_ids(batch_id, len(splits))
    answer: dict[str, Any] = {
        "Message": "submitted",
        "ids": [
            id_ if one.mail is not None else None for id_, one in zip(ids, splits, strict=True)
        ],
    }
    if any(one.suppressed for one in splits):
        answer["suppressed"] = [one.suppressed for one in splits]
        refused = [
            {"index": index, "Problem": all_suppressed_problem(one.suppressed)}
            for index, one in enumerate(splits)
            if one.mail is None
        ]
        if refused:
            answer["refused"] = refused
    return answer


def _queue_unavailable(text: str = "the queue is unavailable; retry later") -> Response:
    return problem(503, text, headers={"Retry-After": "5"})


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


def _mailgun_routes(settings: ApiSettings, ledger: Ledger) -> list[Route]:
    """The Mailgun webhook route, when its signing key is set (ConfigError when the key is
    set but what the route needs is not: a webhook must never be accepted and lost)."""
    key = settings.mailgun_webhook_signing_key
    if key is None:
        return []
    if settings.events_queue is None:
        raise ConfigError(
            "MAILGUN_WEBHOOK_SIGNING_KEY is set but EVENTS_QUEUE is not: webhooks need the "
            "events queue"
        )
    if ledger.store is None:
        raise ConfigError(
            "MAILGUN_WEBHOOK_SIGNING_KEY is set but STATUS_TABLE is not: refusing replays "
            "needs the status table"
        )

    client = make_client(
        "sqs", region=settings.region, endpoint_url=settings.aws_endpoint_url, max_attempts=2
    )
    events = SqsQueue(
        client, settings.events_queue, ThreadPoolExecutor(4, thread_name_prefix="events")
    )
    webhook = MailgunWebhook(
        signing_key=key.get_secret_value(),
        tolerance=settings.mailgun_webhook_tolerance,
        tokens=WebhookTokens(ledger.store.table),
        events=events,
        read_timeout=settings.client_timeout,
    )
    return [Route(MAILGUN_WEBHOOK_PATH, webhook.handle, methods=["POST"])]


def create_app(
    settings: ApiSettings,
    queue: SqsQueue,
    metrics: ApiMetrics | None = None,
    ledger: Ledger | None = None,
    bulk_queue: SqsQueue | None = None,
    notifier: StatusNotifier | None = None,
    *,
    spans_recorded: bool = True,
) -> Starlette:
    """Raises ConfigError when the API keys are missing or malformed.

    ``bulk_queue`` is the bulk stream's queue; without it bulk mail goes to ``queue``.
    ``notifier`` tells webhooks of suppressed recipients; by default the one WEBHOOK_QUEUE
    asks for (none without it or without tracking). ``spans_recorded=False`` (nothing
    exports them) gives requests their trace context without the instrumentation.
    """
    metrics = metrics or ApiMetrics()
    keys = load_api_keys(settings)
    senders = SenderPolicy.parse(settings.sender_domains, settings.key_sender_domains)

    def _check_sender(owner: str, mail: MailRequest) -> None:
        if not senders.allows(owner, mail.from_):
            allowed = ", ".join(sorted(senders.allowed(owner) or ()))
            raise InvalidMail(
                f"from: this API key may send only from these domains: {allowed}", status=403
            )

    ledger = ledger or open_ledger(settings)
    submitter = open_submitter(settings, queue, metrics, bulk_queue=bulk_queue)
    readiness = _Readiness(queue)
    suppressions = ledger.suppressions if settings.suppression == "enabled" else None
    if notifier is None and ledger.store is not None:
        notifier = open_notifier(
            settings,
            ledger.store.table,
            region=settings.region,
            endpoint_url=settings.aws_endpoint_url,
        )
    # Webhook jobs are queued after the answer is decided, off the request: a slow
    # webhook queue must not hold a submission (notify bounds and logs its own failures).
    telling: set[asyncio.Task[object]] = set()

    async def _tell_suppressed(owner: str, messages: list[tuple[str, list[str]]]) -> None:
        if notifier is None or not messages:
            return
        for message_id, addresses in messages:
            for address in addresses:
                task: asyncio.Task[object] = asyncio.ensure_future(
                    notifier.notify(owner, message_id, EventType.SUPPRESSED, recipient=address)
                )
                telling.add(task)
                task.add_done_callback(telling.discard)

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

    async def read_json(request: Request) -> bytes | Response:
        content_type = request.headers.get("content-type", "").split(";")[0].strip().lower()
        if content_type and content_type not in _JSON_TYPES and not content_type.endswith("+json"):
            return problem(
                415, f"Content-Type {content_type!r} is not supported; send application/json"
            )
        try:
            return await _read_body(request, settings.max_request_bytes, settings.client_timeout)
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

    async def submit(request: Request) -> Response:
        body = await read_json(request)
        if isinstance(body, Response):
            return body
        now = time.time()
        owner = owner_of(request)
        try:
            mail_request = parse_mail(body)
            _check_sender(owner, mail_request)
            submitter.check(mail_request, now)
        except InvalidMail as error:
            return problem(error.status, error.problem)
        submitted = mail_request
        suppressed: list[str] = []
        if suppressions is not None:
            try:
                (kept,) = await without_suppressed(suppressions, owner, [mail_request])
            except StoreUnavailable as error:
                log.warning("not queued: suppression list unavailable", error=str(error))
                return store_unavailable()
            suppressed = kept.suppressed
            if kept.mail is None:
                SUPPRESSED_SENDS.inc(len(suppressed))
                return JSONResponse(
                    {
                        "Message": "not submitted",
                        "Problem": all_suppressed_problem(suppressed),
                        "suppressed": suppressed,
                    },
                    status_code=422,
                )
            mail_request = kept.mail
        try:
            prepared = submitter.prepare(owner, mail_request, submitter.new_id(owner), now)
        except InvalidMail as error:
            return problem(error.status, error.problem)
        # The request as submitted: a repeat is the same request whatever the list says now.
        ticket = await ledger.begin(
            owner, request.headers.get(IDEMPOTENCY_HEADER), submitted, prepared.envelope.id
        )
        if not isinstance(ticket, Ticket):
            return submission_refused(ticket)
        prepared = submitter.with_id(prepared, ticket.message_id)
        message_id = ticket.message_id
        with bind_message(message_id=message_id):
            try:
                async with ledger.recording(ticket, [prepared.envelope], [suppressed]):
                    await submitter.publish(prepared)
            except StoreUnavailable as error:
                log.warning("not queued: status store unavailable", error=str(error))
                return store_unavailable()
            except PublishFailed as failure:
                log.warning("not queued", reason=failure.reason)
                if failure.retryable:
                    return _queue_unavailable()
                return problem(400, f"the queue refused the message: {failure.reason}")
            log.info(
                "queued",
                recipients=mail_request.recipient_count,
                suppressed=len(suppressed),
                scheduled=prepared.scheduled,
                attachments=len(mail_request.attachments),
                stream=prepared.envelope.stream,
            )
        if suppressed:
            SUPPRESSED_SENDS.inc(len(suppressed))
            await _tell_suppressed(owner, [(message_id, suppressed)])
            return JSONResponse(
                {"Message": "submitted", "id": message_id, "suppressed": suppressed}
            )
        return JSONResponse({"Message": "submitted", "id": message_id})

    async def submit_batch(request: Request) -> Response:
        body = await read_json(request)
        if isinstance(body, Response):
            return body
        now = time.time()
        owner = owner_of(request)
        batch_id = str(uuid.uuid4())
        try:
            mails = parse_batch(body)
            prepared = []
            for index, (mail, message_id) in enumerate(
                zip(mails, batch_ids(batch_id, len(mails)), strict=True)
            ):
                try:
                    _check_sender(owner, mail)
                    submitter.check(mail, now)
                    prepared.append(submitter.prepare(owner, mail, message_id, now))
                except InvalidMail as error:
                    raise InvalidMail(f"[{index}].{error.problem}", error.status) from None
        except InvalidMail as error:
            return problem(error.status, error.problem)
        splits = [Split(mail, []) for mail in mails]
        if suppressions is not None:
            try:
                splits = await without_suppressed(suppressions, owner, mails)
            except StoreUnavailable as error:
                log.warning("batch not queued: suppression list unavailable", error=str(error))
                return store_unavailable()
        left_out = sum(len(one.suppressed) for one in splits)
        if left_out:
            if all(one.mail is None for one in splits):
                SUPPRESSED_SENDS.inc(left_out)
                return JSONResponse(
                    {
                        "Message": "not submitted",
                        "Problem": "every email of the batch has only suppressed To recipients",
                        "suppressed": [one.suppressed for one in splits],
                    },
                    status_code=422,
                )
            # Validated as submitted above; what is queued is the email without them.
            prepared = [
                submitter.prepare(owner, one.mail, before.envelope.id, now)
                if one.suppressed and one.mail is not None
                else before
                for one, before in zip(splits, prepared, strict=True)
            ]
        ticket = await ledger.begin(
            owner,
            request.headers.get(IDEMPOTENCY_HEADER),
            mails,
            batch_id,
        )
        if isinstance(ticket, Replay):
            return JSONResponse(
                _batch_answer(ticket.message_id, [Split(mail, []) for mail in mails]),
                headers={"Idempotent-Replayed": "true"},
            )
        if not isinstance(ticket, Ticket):
            return submission_refused(ticket)
        ids = batch_ids(ticket.message_id, len(prepared))
        kept = [index for index, one in enumerate(splits) if one.mail is not None]
        queued = [submitter.with_id(prepared[index], ids[index]) for index in kept]
        with bind_message(batch_id=ticket.message_id):
            try:
                async with ledger.recording(
                    ticket,
                    [one.envelope for one in queued],
                    [splits[index].suppressed for index in kept],
                ):
                    results = await asyncio.gather(
                        *(submitter.publish(one) for one in queued), return_exceptions=True
                    )
                    _raise_for_failures(results, kept, len(splits))
            except StoreUnavailable as error:
                log.warning("batch not queued: status store unavailable", error=str(error))
                return store_unavailable()
            except _BatchFailed as failure:
                log.warning("batch partly not queued", problem=failure.problem)
                if failure.retryable:
                    return _queue_unavailable(failure.problem)
                return problem(400, failure.problem)
            log.info("batch queued", messages=len(queued), refused=len(splits) - len(queued))
        SUPPRESSED_SENDS.inc(left_out)
        await _tell_suppressed(
            owner,
            [
                (ids[index], one.suppressed)
                for index, one in enumerate(splits)
                if one.suppressed and one.mail is not None
            ],
        )
        return JSONResponse(_batch_answer(ticket.message_id, splits))

    async def cancel(request: Request) -> Response:
        message_id = request.path_params["message_id"]
        return cancel_answer(await ledger.cancel(owner_of(request), message_id), message_id)

    async def status(request: Request) -> Response:
        message_id = request.path_params["message_id"]
        record = await ledger.lookup(owner_of(request), message_id)
        if isinstance(record, Refusal):
            return lookup_refused(record, message_id)
        return JSONResponse(record.public())

    @asynccontextmanager
    async def lifespan(app: Starlette) -> AsyncIterator[None]:
        yield
        if telling:
            await asyncio.wait(telling, timeout=settings.client_timeout)
        await submitter.aclose()
        await ledger.aclose()

    app = Starlette(
        routes=[
            Route("/", hello),
            Route("/health", health),
            Route("/ready", ready),
            Route("/metrics", metrics_endpoint),
            Route("/openapi.json", openapi),
            Route("/v1/mail", submit, methods=["POST"]),
            Route("/v1/mail/batch", submit_batch, methods=["POST"]),
            path_route("/v1/mail/{message_id}", {"GET": status, "DELETE": cancel}),
            *webhook_routes(
                EndpointRegistry(ledger.store.table) if ledger.store is not None else None,
                settings.destinations,
                client_timeout=settings.client_timeout,
            ),
            *suppression_routes(ledger.suppressions, client_timeout=settings.client_timeout),
            *_mailgun_routes(settings, ledger),
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
    instrument_app(app, recorded=spans_recorded)
    limiter = None
    if settings.rate_limit:
        limiter = TokenBuckets(settings.rate_limit, settings.rate_burst)
    app.add_middleware(AccessControl, keys=keys, limiter=limiter)
    # Before the key check: an unauthenticated flood is bounded too.
    app.add_middleware(Admission, limit=settings.max_concurrent_requests)
    app.add_middleware(_RequestMetrics, metrics=metrics)
    # Outermost: no layer (tracing included) sees an oversize client trace header.
    app.add_middleware(BoundedTraceHeaders)
    app.state.publisher = submitter.publisher
    app.state.submitter = submitter
    app.state.ledger = ledger
    app.state.api_keys = keys
    app.state.senders = senders
    return app
