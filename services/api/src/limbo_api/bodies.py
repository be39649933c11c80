"""Reading the small JSON bodies of the management routes (webhooks, suppressions)."""

from __future__ import annotations

import asyncio

from starlette.requests import Request

from .validation import InvalidMail

__all__ = ["read_small_body"]


async def read_small_body(request: Request, limit: int, timeout: float) -> bytes:
    """The body, or InvalidMail (413) past ``limit`` bytes; TimeoutError past ``timeout``
    seconds and ClientDisconnect pass through for the route to answer."""
    chunks, size = [], 0
    async with asyncio.timeout(timeout):
        async for chunk in request.stream():
            size += len(chunk)
            if size > limit:
                raise InvalidMail(f"body is larger than {limit} bytes", status=413)
            chunks.append(chunk)
    return b"".join(chunks)
