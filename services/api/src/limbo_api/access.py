"""Who is calling, and may they call now: API key check and rate limit for every route
except the open ones. New routes are protected unless listed here as open.
"""

from __future__ import annotations

import math

from starlette.datastructures import Headers
from starlette.requests import Request
from starlette.types import ASGIApp, Receive, Scope, Send

from limbo_shared.http import problem

from .auth import ApiKeys
from .ratelimit import TokenBuckets

__all__ = ["DEFAULT_OWNER", "OPEN_PATHS", "AccessControl", "owner_of"]

# The owner of everything submitted when the API runs open (AUTH=disabled).
DEFAULT_OWNER = "default"
# Probes, scrapers and the API description must work without a key.
# Webhooks authenticate by their signature, which the route checks, not by an API key.
OPEN_PATHS = frozenset(
    {"/", "/health", "/ready", "/metrics", "/openapi.json", "/v1/events/mailgun"}
)


def owner_of(request: Request) -> str:
    """The API key's name, as AccessControl found it."""
    return str(request.scope.get("state", {}).get("owner", DEFAULT_OWNER))


def _bearer(headers: Headers) -> str | None:
    scheme, _, credentials = headers.get("authorization", "").partition(" ")
    if scheme.lower() != "bearer" or not credentials.strip():
        return None
    return credentials.strip()


class AccessControl:
    def __init__(self, app: ASGIApp, keys: ApiKeys | None, limiter: TokenBuckets | None) -> None:
        self.app = app
        self.keys = keys
        self.limiter = limiter

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] != "http" or scope["path"] in OPEN_PATHS:
            await self.app(scope, receive, send)
            return
        # The error shape names what was refused: a submission, or anything else.
        refused = "not submitted" if scope["method"] == "POST" else "refused"
        owner = DEFAULT_OWNER
        if self.keys is not None:
            presented = _bearer(Headers(scope=scope))
            name = self.keys.identify(presented) if presented is not None else None
            if name is None:
                # One answer for a missing, unknown or revoked key: no hint which it was.
                response = problem(
                    401,
                    "a valid API key is required, "
                    "sent as a Bearer token in the Authorization header",
                    headers={"WWW-Authenticate": 'Bearer realm="limbo"'},
                    message=refused,
                )
                await response(scope, receive, send)
                return
            owner = name
            # Rate limits are per key; with AUTH=disabled there is no key to limit.
            if self.limiter is not None:
                wait = self.limiter.take(owner)
                if wait > 0:
                    response = problem(
                        429,
                        f"rate limit of {self.limiter.rate:g} requests/s for this API key",
                        headers={"Retry-After": str(max(1, math.ceil(wait)))},
                        message=refused,
                    )
                    await response(scope, receive, send)
                    return
        scope.setdefault("state", {})["owner"] = owner
        await self.app(scope, receive, send)
