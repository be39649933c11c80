"""A Mailgun-compatible sink: accepts ``POST /v3/{domain}/messages`` and records it.

For the local run, the tests and the benchmark. ``GET /messages`` lists what arrived
(``?count_only=1``: only how many; attachments as name, type, size and SHA-256),
``DELETE /messages`` forgets it. Response latency and failures can be injected through
the environment, so the same sink plays a slow or flaky provider; mail to a recipient
starting with ``SINK_FAIL_RECIPIENT_PREFIX`` fails with 500 its first
``SINK_FAIL_RECIPIENT_TIMES`` attempts (per recipient), then is accepted. ``GET
/v3/domains/{domain}`` answers as Mailgun's does for a known domain (the worker's probe),
and ``PUT /control/api-key`` changes the key it accepts (``{"api_key": ...}``, null for
any), so a test can revoke a key and restore it while a worker runs. ``GET
/v3/{domain}/events`` answers Mailgun's events API for what it accepted (``accepted``
events, filtered by ``event`` and ``user-variables``, the lookup a worker makes before a
resend), when it records messages; ``GET /messages`` counts those lookups. With
``SINK_WEBHOOK_URL`` and ``SINK_WEBHOOK_SIGNING_KEY`` it posts signed webhooks back for
its test addresses at ``SINK_EVENTS_DOMAINS`` (see mailgun_webhooks.py).
"""

from __future__ import annotations

import asyncio
import base64
import hashlib
import json
import os
import random
import time
import uuid
from collections.abc import Mapping
from dataclasses import dataclass, field
from email.parser import BytesParser
from email.policy import HTTP
from typing import Any
from urllib.parse import parse_qsl

import uvicorn
from pydantic import BaseModel, ConfigDict, Field, ValidationError, field_validator
from starlette.applications import Starlette
from starlette.requests import Request
from starlette.responses import JSONResponse, Response
from starlette.routing import Route

from limbo_shared.config import ConfigError, exit_with_config_error
from limbo_shared.errors import describe_settings_error

from .mailgun_webhooks import post_webhooks, simulated_events

__all__ = ["SinkConfig", "create_app", "main"]

_PREFIX = "SINK_"


class SinkConfig(BaseModel):
    """How the sink behaves; each field is the variable ``SINK_<FIELD>`` (``SINK_FAIL_500``).

    The one definition: the sink reads it with :meth:`from_env`, a harness that starts a
    sink writes it with :meth:`to_env`.
    """

    model_config = ConfigDict(extra="forbid", frozen=True)

    api_key: str | None = None
    latency_ms: float = Field(default=0.0, ge=0)
    # Shares of requests answered 500, 429 (Retry-After: 1), slowly, or 400 (permanent).
    fail_500: float = Field(default=0.0, ge=0, le=1)
    fail_429: float = Field(default=0.0, ge=0, le=1)
    fail_slow: float = Field(default=0.0, ge=0, le=1)
    # How long a slow answer takes; it is still accepted afterwards, like a real provider.
    slow_seconds: float = Field(default=30.0, ge=0)
    fail_400: float = Field(default=0.0, ge=0, le=1)
    # Mail to a recipient starting with this fails (500) its first `times` attempts.
    fail_recipient_prefix: str = ""
    fail_recipient_times: int = Field(default=3, ge=0)
    # Remember full messages (fields) or only counts; the benchmark keeps memory flat.
    record: bool = True
    seed: int | None = None
    # Where to post delivery webhooks for test addresses, and the key to sign them.
    webhook_url: str | None = None
    webhook_signing_key: str | None = None
    # Domains whose addresses are test addresses (SINK_EVENTS_DOMAINS, comma-separated).
    events_domains: frozenset[str] = frozenset({"mailgun-simulator.example.com"})

    @field_validator("events_domains", mode="before")
    @classmethod
    def _split_domains(cls, value: object) -> object:
        # The variable is comma-separated; domains compare lower-cased.
        if isinstance(value, str):
            return frozenset(d.strip().lower() for d in value.split(",") if d.strip())
        return value

    @classmethod
    def from_env(cls, environ: Mapping[str, str] | None = None) -> SinkConfig:
        """Raises ConfigError naming the variable."""
        environ = os.environ if environ is None else environ
        values = {
            name: environ[_PREFIX + name.upper()]
            for name in cls.model_fields
            if environ.get(_PREFIX + name.upper())
        }
        try:
            return cls.model_validate(values)
        except ValidationError as error:
            raise ConfigError(describe_settings_error(error, prefix=_PREFIX)) from None

    def to_env(self) -> dict[str, str]:
        """The variables that make a sink started with them behave like this config."""
        env = {}
        for name, value in self.model_dump(exclude_none=True).items():
            if isinstance(value, bool):
                text = "1" if value else "0"
            elif isinstance(value, frozenset):
                text = ",".join(sorted(value))
            else:
                text = str(value)
            env[_PREFIX + name.upper()] = text
        return env


@dataclass
class _State:
    messages: list[dict[str, Any]] = field(default_factory=list)
    accepted: int = 0
    lookups: int = 0
    failures: dict[str, int] = field(default_factory=dict)
    # Failed attempts so far per recipient, for SINK_FAIL_RECIPIENT_PREFIX.
    failed_recipients: dict[str, int] = field(default_factory=dict)
    webhooks: set[asyncio.Task[None]] = field(default_factory=set)
    # The key accepted now: the config's at start, changed by PUT /control/api-key.
    api_key: str | None = None


def _authorized(request: Request, api_key: str | None) -> bool:
    if api_key is None:
        return True
    header = request.headers.get("authorization", "")
    if not header.startswith("Basic "):
        return False
    try:
        user, _, password = base64.b64decode(header[6:]).decode().partition(":")
    except ValueError:
        return False
    return user == "api" and password == api_key


def _multipart(content_type: str, body: bytes) -> tuple[dict[str, list[str]], list[dict[str, Any]]]:
    """Form fields and files of a multipart/form-data body (the stdlib's MIME parser).

    Files are kept as their size and SHA-256, so a test can check the bytes that
    arrived without the sink holding megabytes per message.
    """
    message = BytesParser(policy=HTTP).parsebytes(
        b"Content-Type: " + content_type.encode() + b"\r\n\r\n" + body
    )
    fields: dict[str, list[str]] = {}
    files: list[dict[str, Any]] = []
    for part in message.iter_parts() if message.is_multipart() else []:
        name = part.get_param("name", header="content-disposition")
        data = part.get_payload(decode=True)
        if not isinstance(name, str) or not isinstance(data, bytes):
            continue
        filename = part.get_filename()
        if filename is None:
            fields.setdefault(name, []).append(data.decode())
            continue
        files.append(
            {
                "field": name,
                "filename": filename,
                "content_type": part.get_content_type(),
                "size": len(data),
                "sha256": hashlib.sha256(data).hexdigest(),
            }
        )
    return fields, files


def create_app(config: SinkConfig | None = None) -> Starlette:
    config = config or SinkConfig.from_env()
    state = _State(api_key=config.api_key)
    rng = random.Random(config.seed)

    async def send(request: Request) -> Response:
        # When the provider got the request, before any injected latency: what the
        # benchmark's end-to-end latency measures to.
        received_at = time.time()
        if not _authorized(request, state.api_key):
            return Response("Forbidden", status_code=401)
        content_type = request.headers.get("content-type", "")
        fields: dict[str, list[str]] = {}
        files: list[dict[str, Any]] = []
        if content_type.startswith("application/x-www-form-urlencoded"):
            for key, value in parse_qsl((await request.body()).decode(), keep_blank_values=True):
                fields.setdefault(key, []).append(value)
        elif content_type.startswith("multipart/form-data"):
            fields, files = _multipart(content_type, await request.body())
        else:
            return JSONResponse(
                {"message": "send application/x-www-form-urlencoded or multipart/form-data"},
                status_code=400,
            )
        if not fields.get("from") or not fields.get("to"):
            return JSONResponse({"message": "'from' and 'to' are required"}, status_code=400)
        recipient = fields["to"][0]
        if config.fail_recipient_prefix and recipient.startswith(config.fail_recipient_prefix):
            failed = state.failed_recipients.get(recipient, 0)
            if failed < config.fail_recipient_times:
                state.failed_recipients[recipient] = failed + 1
                state.failures["recipient"] = state.failures.get("recipient", 0) + 1
                return JSONResponse({"message": "injected failure"}, status_code=500)
        roll = rng.random()
        injected: str | None = None
        for kind, rate in (
            ("500", config.fail_500),
            ("429", config.fail_429),
            ("slow", config.fail_slow),
            ("400", config.fail_400),
        ):
            if roll < rate:
                state.failures[kind] = state.failures.get(kind, 0) + 1
                if kind == "500":
                    return JSONResponse({"message": "injected failure"}, status_code=500)
                if kind == "429":
                    return JSONResponse(
                        {"message": "slow down"}, status_code=429, headers={"Retry-After": "1"}
                    )
                if kind == "slow":
                    # Like a real provider, the message is still accepted after the
                    # client gave up: a retry then sends it twice.
                    await asyncio.sleep(config.slow_seconds)
                    injected = "slow"
                    break
                return JSONResponse({"message": "injected permanent rejection"}, status_code=400)
            roll -= rate
        if config.latency_ms:
            await asyncio.sleep(config.latency_ms / 1000)
        message_id = f"<{uuid.uuid4().hex}@{request.path_params['domain']}>"
        state.accepted += 1
        if config.record:
            state.messages.append(
                {
                    "id": message_id,
                    "domain": request.path_params["domain"],
                    "received_at": received_at,
                    "accepted_at": time.time(),
                    "fields": fields,
                    "files": files,
                    "injected": injected,
                }
            )
        if config.webhook_url and config.webhook_signing_key:
            bodies = simulated_events(
                config.webhook_signing_key, fields, config.events_domains, message_id
            )
            if bodies:
                task = asyncio.create_task(post_webhooks(config.webhook_url, bodies))
                state.webhooks.add(task)
                task.add_done_callback(state.webhooks.discard)
        return JSONResponse({"id": message_id, "message": "Queued. Thank you."})

    async def domain(request: Request) -> Response:
        if not _authorized(request, state.api_key):
            return Response("Forbidden", status_code=401)
        name = request.path_params["domain"]
        return JSONResponse({"domain": {"name": name, "state": "active"}})

    async def events(request: Request) -> Response:
        if not _authorized(request, state.api_key):
            return Response("Forbidden", status_code=401)
        state.lookups += 1
        query = request.query_params
        try:
            wanted = json.loads(query.get("user-variables") or "{}")
            limit = int(query.get("limit") or 300)
        except ValueError:
            return JSONResponse({"message": "malformed user-variables or limit"}, status_code=400)
        if not isinstance(wanted, dict):
            return JSONResponse({"message": "user-variables must be an object"}, status_code=400)
        items = []
        for message in state.messages if query.get("event", "accepted") == "accepted" else []:
            variables = {
                name[2:]: values[-1]
                for name, values in message["fields"].items()
                if name.startswith("v:")
            }
            if message["domain"] != request.path_params["domain"] or any(
                variables.get(name) != str(value) for name, value in wanted.items()
            ):
                continue
            items.append(
                {
                    "event": "accepted",
                    "timestamp": message["accepted_at"],
                    "message": {"headers": {"message-id": message["id"].strip("<>")}},
                    "user-variables": variables,
                }
            )
        return JSONResponse({"items": items[:limit], "paging": {}})

    async def api_key(request: Request) -> Response:
        body = await request.json()
        if not isinstance(body, dict) or not isinstance(body.get("api_key"), str | None):
            return JSONResponse({"message": 'send {"api_key": "<key>" or null}'}, status_code=400)
        state.api_key = body["api_key"]
        return JSONResponse({"changed": True})

    async def messages(request: Request) -> Response:
        if request.method == "DELETE":
            state.messages.clear()
            state.accepted = 0
            state.lookups = 0
            state.failures.clear()
            return JSONResponse({"deleted": True})
        if request.query_params.get("count_only"):
            # Polled many times a second by the benchmark: keep it cheap.
            return JSONResponse(
                {"count": state.accepted, "failures": state.failures, "lookups": state.lookups}
            )
        return JSONResponse(
            {
                "count": state.accepted,
                "failures": state.failures,
                "lookups": state.lookups,
                "messages": state.messages,
            }
        )

    async def health(request: Request) -> Response:
        return JSONResponse({"health": "ok"})

    return Starlette(
        routes=[
            Route("/v3/{domain}/messages", send, methods=["POST"]),
            Route("/v3/domains/{domain}", domain, methods=["GET"]),
            Route("/v3/{domain}/events", events, methods=["GET"]),
            Route("/control/api-key", api_key, methods=["PUT"]),
            Route("/messages", messages, methods=["GET", "DELETE"]),
            Route("/health", health),
        ]
    )


def main() -> None:
    port = int(os.environ.get("SINK_PORT", os.environ.get("PORT", "8025")))
    try:
        config = SinkConfig.from_env()
    except ConfigError as error:
        exit_with_config_error("limbo-mailgun-sink", error)
    uvicorn.run(
        create_app(config),
        host=os.environ.get("SINK_HOST", "127.0.0.1"),
        port=port,
        log_level="warning",
        access_log=False,
    )


if __name__ == "__main__":
    main()
