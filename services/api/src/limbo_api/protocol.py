"""uvicorn's httptools protocol, with a bound on how long a client may take over a request head.

uvicorn times out idle keep-alive connections only *after* a response: a connection
that never completes its first request line and headers (slowloris), or that starts a
next request and stalls, is held for ever. Here every connection must complete each
request head within ``head_timeout`` seconds of being opened or of its previous
response, or it gets ``408 Request Timeout`` and is closed. The body has its own bound
in the app (CLIENT_TIMEOUT as well), where the route reads it.
"""

from __future__ import annotations

import asyncio
from typing import Any

from uvicorn.protocols.http.httptools_impl import HttpToolsProtocol

__all__ = ["bounded_protocol"]

_REQUEST_TIMEOUT = (
    b"HTTP/1.1 408 Request Timeout\r\ncontent-type: application/json\r\n"
    b"connection: close\r\ncontent-length: %d\r\n\r\n%s"
)


class _HeadTimeoutProtocol(HttpToolsProtocol):
    head_timeout = 10.0
    _head_timer: asyncio.TimerHandle | None = None

    def connection_made(self, transport: asyncio.Transport) -> None:  # type: ignore[override]
        super().connection_made(transport)
        self._arm()

    def on_headers_complete(self) -> None:
        self._disarm()
        super().on_headers_complete()

    def on_response_complete(self) -> None:
        super().on_response_complete()
        if not self.transport.is_closing():
            self._arm()  # the next request's head gets the same bound

    def connection_lost(self, exc: Exception | None) -> None:
        self._disarm()
        super().connection_lost(exc)

    def _arm(self) -> None:
        self._disarm()
        self._head_timer = self.loop.call_later(self.head_timeout, self._timed_out)

    def _disarm(self) -> None:
        if self._head_timer is not None:
            self._head_timer.cancel()
            self._head_timer = None

    def _timed_out(self) -> None:
        self._head_timer = None
        if self.transport.is_closing():
            return
        body = (
            b'{"Message":"not submitted","Problem":"the request was not complete within '
            + str(self.head_timeout).encode()
            + b's"}'
        )
        self.transport.write(_REQUEST_TIMEOUT % (len(body), body))
        self.transport.close()


def bounded_protocol(head_timeout: float) -> type[Any]:
    """The protocol class to pass as uvicorn's ``http``, with this head timeout."""
    return type("BoundedHttpToolsProtocol", (_HeadTimeoutProtocol,), {"head_timeout": head_timeout})
