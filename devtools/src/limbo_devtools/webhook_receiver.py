"""``limbo-webhook-receiver``: an application's webhook endpoint, for the local run and tests.

Takes ``POST`` on any path, prints each webhook on one line and keeps it (body and the
Standard Webhooks headers) for ``GET /received``; ``DELETE /received`` forgets them.
With a secret (``RECEIVER_SECRET``, or ``PUT /secret`` with the ``whsec_...`` limbo
answered at registration) it verifies each one with the ``standardwebhooks`` library and
says so. ``RECEIVER_FAIL_FIRST=N`` answers 500 to the first N webhooks of each path,
``RECEIVER_FAIL=1`` to all of them (a receiver that is down); the query parameters
``?fail_first=N`` and ``?fail=1`` do the same for one endpoint URL, so one receiver
can play several applications.
"""

from __future__ import annotations

import json
import os
import time
from dataclasses import dataclass, field
from typing import Any

import uvicorn
from standardwebhooks.webhooks import Webhook, WebhookVerificationError
from starlette.applications import Starlette
from starlette.requests import Request
from starlette.responses import JSONResponse, Response
from starlette.routing import Route

__all__ = ["ReceiverConfig", "create_app", "main"]

_HEADERS = ("webhook-id", "webhook-timestamp", "webhook-signature", "content-type", "host")


@dataclass
class ReceiverConfig:
    secret: str | None = None
    fail_first: int = 0
    fail_always: bool = False

    @classmethod
    def from_env(cls) -> ReceiverConfig:
        return cls(
            secret=os.environ.get("RECEIVER_SECRET") or None,
            fail_first=int(os.environ.get("RECEIVER_FAIL_FIRST", "0")),
            fail_always=os.environ.get("RECEIVER_FAIL", "0") not in ("", "0"),
        )


@dataclass
class _State:
    received: list[dict[str, Any]] = field(default_factory=list)
    requests: int = 0
    per_path: dict[str, int] = field(default_factory=dict)


def create_app(config: ReceiverConfig | None = None) -> Starlette:
    config = config or ReceiverConfig.from_env()
    state = _State()

    async def receive(request: Request) -> Response:
        body = (await request.body()).decode("utf-8", "replace")
        state.requests += 1
        path = request.url.path
        state.per_path[path] = count = state.per_path.get(path, 0) + 1
        headers = {name: request.headers.get(name, "") for name in _HEADERS}
        fail_first = int(request.query_params.get("fail_first", config.fail_first))
        fail_always = config.fail_always or request.query_params.get("fail", "0") != "0"
        failing = fail_always or count <= fail_first
        verified: bool | None = None
        if config.secret:
            try:
                Webhook(config.secret).verify(body, headers)
                verified = True
            except WebhookVerificationError:
                verified = False
        state.received.append(
            {
                "at": time.time(),
                "path": path,
                "headers": headers,
                "body": body,
                "verified": verified,
                "answered": 500 if failing else 204,
            }
        )
        try:
            kind = json.loads(body).get("type")
        except (ValueError, AttributeError):
            kind = None
        mark = {True: "signature ok", False: "SIGNATURE INVALID", None: "not verified"}[verified]
        print(f"webhook {headers['webhook-id']} {kind} ({mark}): {body}", flush=True)
        if failing:
            return JSONResponse({"error": "failing on purpose"}, status_code=500)
        return Response(status_code=204)

    async def received(request: Request) -> Response:
        if request.method == "DELETE":
            state.received.clear()
            return Response(status_code=204)
        path = request.query_params.get("path")
        chosen = [r for r in state.received if path is None or r["path"] == path]
        return JSONResponse({"requests": state.requests, "received": chosen})

    async def secret(request: Request) -> Response:
        config.secret = (await request.body()).decode().strip() or None
        return Response(status_code=204)

    async def health(request: Request) -> Response:
        return JSONResponse({"health": "ok"})

    return Starlette(
        routes=[
            Route("/health", health),
            Route("/received", received, methods=["GET", "DELETE"]),
            Route("/secret", secret, methods=["PUT"]),
            Route("/{path:path}", receive, methods=["POST"]),
        ]
    )


def main() -> None:
    uvicorn.run(
        create_app(),
        host=os.environ.get("RECEIVER_HOST", "127.0.0.1"),
        port=int(os.environ.get("RECEIVER_PORT", os.environ.get("PORT", "8026"))),
        log_level="warning",
        access_log=False,
    )


if __name__ == "__main__":
    main()
