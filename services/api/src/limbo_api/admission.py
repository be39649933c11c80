"""A bound on the requests the API works on at once, with room kept for probes.

uvicorn's ``limit_concurrency`` answers 503 (plain text) to everything past its limit,
probes included, and a kubelet that sees /health fail restarts the pod and loses what it
held. So the API admits at most MAX_CONCURRENT_REQUESTS requests to the routes that do
work, answering the rest 503 in the JSON shape at once; uvicorn's own limit sits above it
(PROBE_HEADROOM more) so that /health, /ready and /metrics still get through.
"""

from __future__ import annotations

from starlette.types import ASGIApp, Receive, Scope, Send

from limbo_shared.http import problem

from .access import OPEN_PATHS

__all__ = ["PROBE_HEADROOM", "Admission"]

# Connections and requests uvicorn accepts beyond the admitted ones, for the open paths.
PROBE_HEADROOM = 64


class Admission:
    def __init__(self, app: ASGIApp, limit: int) -> None:
        self.app = app
        self.limit = limit
        self.active = 0

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] != "http" or scope["path"] in OPEN_PATHS:
            await self.app(scope, receive, send)
            return
        if self.active >= self.limit:
            response = problem(
                503,
                f"the API is at MAX_CONCURRENT_REQUESTS={self.limit}; retry shortly",
                headers={"Retry-After": "1"},
                message="not submitted" if scope["method"] == "POST" else "refused",
            )
            await response(scope, receive, send)
            return
        self.active += 1
        try:
            await self.app(scope, receive, send)
        finally:
            self.active -= 1
