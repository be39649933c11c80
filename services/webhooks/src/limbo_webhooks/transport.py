"""One webhook attempt over HTTP, with the destination rules enforced at connect time.

httpcore, not httpx: it never follows redirects, reads no proxy settings from the
environment and lets limbo supply the network backend. :class:`GuardedBackend` resolves
the name itself, refuses it if *any* address is not allowed, and connects to an address
it checked; TLS then runs with the URL's host name for SNI and certificate checks, and
the Host header names it too. The answer is read up to a small bound and dropped.
"""

from __future__ import annotations

import asyncio
import ipaddress
import socket
import time
from collections.abc import Iterable
from dataclasses import dataclass

import httpcore

from limbo_shared.webhooks import Attempt, DeliveryJob, Destinations, Endpoint, Refused

from .signing import signed_headers

__all__ = ["Deliverer", "GuardedBackend"]

USER_AGENT = "limbo-webhooks/0.1 (+https://www.standardwebhooks.com/)"


class GuardedBackend(httpcore.AsyncNetworkBackend):
    def __init__(
        self, destinations: Destinations, inner: httpcore.AsyncNetworkBackend | None = None
    ) -> None:
        self.destinations = destinations
        self._inner = inner or httpcore.AnyIOBackend()

    async def connect_tcp(
        self,
        host: str,
        port: int,
        timeout: float | None = None,
        local_address: str | None = None,
        socket_options: Iterable[httpcore.SOCKET_OPTION] | None = None,
    ) -> httpcore.AsyncNetworkStream:
        addresses = await self._resolve(host, port, timeout)
        for address in addresses:  # every one: a resolver may hand out any of them
            self.destinations.check_address(host, address)
        error: Exception = httpcore.ConnectError(f"{host} has no address")
        for address in addresses:
            try:
                return await self._inner.connect_tcp(
                    str(address),
                    port,
                    timeout=timeout,
                    local_address=local_address,
                    socket_options=socket_options,
                )
            except httpcore.ConnectError as failed:
                error = failed
        raise error

    async def _resolve(
        self, host: str, port: int, timeout: float | None
    ) -> list[ipaddress.IPv4Address | ipaddress.IPv6Address]:
        loop = asyncio.get_running_loop()
        try:
            async with asyncio.timeout(timeout):
                infos = await loop.getaddrinfo(host, port, type=socket.SOCK_STREAM)
        except TimeoutError:
            raise httpcore.ConnectTimeout(f"resolving {host} timed out") from None
        except OSError as error:
            raise httpcore.ConnectError(f"{host} does not resolve: {error}") from None
        seen: dict[str, ipaddress.IPv4Address | ipaddress.IPv6Address] = {}
        for *_, sockaddr in infos:
            text = str(sockaddr[0]).split("%", 1)[0]  # drop an IPv6 zone id
            seen.setdefault(text, ipaddress.ip_address(text))
        return list(seen.values())

    async def connect_unix_socket(
        self,
        path: str,
        timeout: float | None = None,
        socket_options: Iterable[httpcore.SOCKET_OPTION] | None = None,
    ) -> httpcore.AsyncNetworkStream:
        raise Refused("unix sockets are not webhook destinations")

    async def sleep(self, seconds: float) -> None:
        await self._inner.sleep(seconds)


@dataclass(frozen=True)
class _Answer:
    status: int | None
    outcome: str


class Deliverer:
    """POSTs signed webhooks; one instance (and connection pool) per process."""

    def __init__(
        self,
        destinations: Destinations,
        *,
        timeout: float,
        max_response_bytes: int,
        max_connections: int,
        backend: httpcore.AsyncNetworkBackend | None = None,
    ) -> None:
        self.destinations = destinations
        self.timeout = timeout
        self.max_response_bytes = max_response_bytes
        self._pool = httpcore.AsyncConnectionPool(
            network_backend=backend or GuardedBackend(destinations),
            max_connections=max_connections,
            keepalive_expiry=30.0,
            retries=0,
        )

    async def deliver(self, endpoint: Endpoint, job: DeliveryJob) -> Attempt:
        now = time.time()
        started = time.perf_counter()
        answer = await self._post(endpoint, job, now)
        return Attempt(
            at=now,
            status_code=answer.status,
            latency_ms=(time.perf_counter() - started) * 1000,
            outcome=answer.outcome,
            webhook_id=job.webhook_id,
        )

    async def _post(self, endpoint: Endpoint, job: DeliveryJob, now: float) -> _Answer:
        try:
            _, host, port = self.destinations.check_url(endpoint.url)
        except Refused:
            return _Answer(None, "blocked")
        default_port = 443 if endpoint.url.lower().startswith("https:") else 80
        headers = {
            **signed_headers(endpoint, job, now),
            "host": host if port == default_port else f"{host}:{port}",
            "user-agent": USER_AGENT,
        }
        body = job.body.encode()
        headers["content-length"] = str(len(body))
        limits = {"connect": self.timeout, "read": self.timeout, "write": self.timeout}
        try:
            async with asyncio.timeout(self.timeout):
                async with self._pool.stream(
                    "POST",
                    endpoint.url,
                    headers=list(headers.items()),
                    content=body,
                    extensions={"timeout": {**limits, "pool": self.timeout}},
                ) as response:
                    read = 0
                    async for chunk in response.aiter_stream():
                        read += len(chunk)
                        if read >= self.max_response_bytes:
                            break  # the rest is dropped with the connection
                    status = response.status
        except Refused:
            return _Answer(None, "blocked")
        except (TimeoutError, httpcore.TimeoutException):
            return _Answer(None, "timeout")
        except httpcore.ConnectError:
            return _Answer(None, "connect_error")
        except (httpcore.NetworkError, httpcore.ProtocolError, httpcore.UnsupportedProtocol):
            return _Answer(None, "network_error")
        return _Answer(status, "ok" if 200 <= status < 300 else "http_error")

    async def aclose(self) -> None:
        await self._pool.aclose()
