"""One Starlette route per path, dispatching on the method.

Starlette answers a method a path lacks with the ``Allow`` of the *first* route that
matches the path; with a route per method, that header would name only that one. One
route per path names them all (and HEAD with GET, which Starlette serves for it).
"""

from __future__ import annotations

from collections.abc import Awaitable, Callable, Mapping

from starlette.requests import Request
from starlette.responses import Response
from starlette.routing import Route

__all__ = ["Endpoint", "path_route"]

Endpoint = Callable[[Request], Awaitable[Response]]


def path_route(path: str, handlers: Mapping[str, Endpoint]) -> Route:
    """A route for ``path`` serving each method of ``handlers`` (``{"GET": read, ...}``)."""
    by_method = {method.upper(): handler for method, handler in handlers.items()}
    if "GET" in by_method:
        by_method.setdefault("HEAD", by_method["GET"])

    async def dispatch(request: Request) -> Response:
        return await by_method[request.method](request)

    return Route(path, dispatch, methods=list(handlers))
