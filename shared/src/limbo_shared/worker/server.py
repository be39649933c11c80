"""The worker's small HTTP port: liveness, readiness and Prometheus metrics."""

from __future__ import annotations

import contextlib
from collections.abc import Callable, Iterator

import uvicorn
from starlette.applications import Starlette
from starlette.requests import Request
from starlette.responses import JSONResponse, Response
from starlette.routing import Route

from ..http import metrics_response
from ..serving import Server

__all__ = ["QuietServer", "health_app", "health_server"]


def health_app(is_ready: Callable[[], bool]) -> Starlette:
    async def health(request: Request) -> Response:
        return JSONResponse({"health": "ok"})

    async def ready(request: Request) -> Response:
        if is_ready():
            return JSONResponse({"ready": True})
        return JSONResponse({"ready": False}, status_code=503)

    async def metrics(request: Request) -> Response:
        return metrics_response(request)

    return Starlette(
        routes=[Route("/health", health), Route("/ready", ready), Route("/metrics", metrics)]
    )


class QuietServer(Server):
    """A server that leaves SIGTERM to the worker, which drains before exiting (and then
    calls :meth:`~limbo_shared.serving.Server.exit`)."""

    @contextlib.contextmanager
    def capture_signals(self) -> Iterator[None]:
        yield


def health_server(port: int, is_ready: Callable[[], bool]) -> QuietServer:
    """The health app on every interface at ``port``, without access logs or lifespan."""
    return QuietServer(
        uvicorn.Config(
            health_app(is_ready),
            host="0.0.0.0",
            port=port,
            log_config=None,
            lifespan="off",
            access_log=False,
        )
    )
