"""A counting HTTP/1.1 reverse proxy in front of the AWS emulators.

Every request is counted by its API action before it is forwarded: the JSON protocol
names it in ``X-Amz-Target`` (``AmazonSQS.ReceiveMessage``), the query protocol in the
form field ``Action=``, SES v2's REST protocol in the path. SES v2 requests go to a
second upstream (LocalStack's community edition does not emulate SES v2; moto does),
everything else to the first. ``GET /__bench/counts`` answers the counts as JSON and
``POST /__bench/reset`` clears them; ``GET /__bench/latency`` answers the mean upstream
time per action in ms (long polls included as they are) and ``GET /__bench/tail`` its
p50, p99 and maximum, so a latency figure can be set beside what the emulator itself
took meanwhile; none is forwarded.

Deliberately small: no TLS, no ``Expect: 100-continue``; botocore sends neither to a
plain-http endpoint. Long polls hold their upstream connection, so the pool grows as
needed and keeps idle connections for reuse.
"""

from __future__ import annotations

import argparse
import asyncio
import json
import os
import re
import signal
import time
from collections import Counter, defaultdict
from dataclasses import dataclass, field
from urllib.parse import urlsplit

__all__ = ["CountingProxy", "action_of", "main"]

Upstream = tuple[str, int]
_ACTION = re.compile(rb"(?:^|&)Action=([A-Za-z0-9]+)")


def action_of(method: str, path: str, headers: dict[str, str], body: bytes) -> str:
    """The API action a request calls, e.g. ``SendMessageBatch`` or ``sesv2:SendEmail``."""
    target = headers.get("x-amz-target")
    if target:
        return target.rsplit(".", 1)[-1]
    if path.startswith("/v2/email/"):
        if path.startswith("/v2/email/outbound-emails"):
            return "sesv2:SendEmail"
        return f"sesv2:{method} {path.split('?')[0]}"
    # Query protocol: Action= comes first in the form body (or in the URL's query).
    found = _ACTION.search(body[:512]) or _ACTION.search(urlsplit(path).query.encode())
    if found:
        return found.group(1).decode()
    return f"{method} {path.split('?')[0]}"


@dataclass
class _Pool:
    address: Upstream
    idle: list[tuple[asyncio.StreamReader, asyncio.StreamWriter]] = field(default_factory=list)

    async def get(self) -> tuple[asyncio.StreamReader, asyncio.StreamWriter]:
        while self.idle:
            reader, writer = self.idle.pop()
            if not writer.is_closing() and not reader.at_eof():
                return reader, writer
        return await asyncio.open_connection(*self.address)

    def put(self, connection: tuple[asyncio.StreamReader, asyncio.StreamWriter]) -> None:
        if len(self.idle) < 256:
            self.idle.append(connection)
        else:
            connection[1].close()


async def _read_message(reader: asyncio.StreamReader) -> tuple[bytes, dict[str, str], bytes]:
    """One HTTP/1.1 message: raw head, lower-cased headers, body (length or chunked)."""
    head = await reader.readuntil(b"\r\n\r\n")
    headers: dict[str, str] = {}
    for line in head.split(b"\r\n")[1:]:
        if b":" in line:
            name, _, value = line.partition(b":")
            headers[name.strip().lower().decode("latin-1")] = value.strip().decode("latin-1")
    if "content-length" in headers:
        body = await reader.readexactly(int(headers["content-length"]))
    elif headers.get("transfer-encoding", "").lower() == "chunked":
        chunks = []
        while True:
            size_line = await reader.readuntil(b"\r\n")
            size = int(size_line.split(b";")[0], 16)
            chunk = await reader.readexactly(size + 2)
            chunks.append(size_line + chunk)
            if size == 0:
                break
        body = b"".join(chunks)
    else:
        body = b""
    return head, headers, body


class CountingProxy:
    def __init__(self, default: Upstream, ses: Upstream | None = None) -> None:
        self.counts: Counter[str] = Counter()
        # Upstream time per action (seconds): shows when the emulator is the bottleneck.
        self.upstream_seconds: dict[str, float] = defaultdict(float)
        # Each call's time too, for percentiles (a phase makes at most ~10^5 calls).
        self.upstream_calls: dict[str, list[float]] = defaultdict(list)
        self._pools = {"default": _Pool(default), "ses": _Pool(ses or default)}

    async def handle(self, reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
        try:
            while True:
                try:
                    head, headers, body = await _read_message(reader)
                except (asyncio.IncompleteReadError, ConnectionError):
                    return
                method, path, _ = head.split(b" ", 2)
                method_s, path_s = method.decode(), path.decode("latin-1")
                if path_s.startswith("/__bench/"):
                    writer.write(self._control(method_s, path_s))
                    await writer.drain()
                    continue
                action = action_of(method_s, path_s, headers, body)
                self.counts[action] += 1
                pool = self._pools["ses" if path_s.startswith("/v2/email/") else "default"]
                started = time.perf_counter()
                response = await self._forward(pool, head + body)
                took = time.perf_counter() - started
                self.upstream_seconds[action] += took
                self.upstream_calls[action].append(took)
                writer.write(response)
                await writer.drain()
        finally:
            writer.close()

    async def _forward(self, pool: _Pool, request: bytes) -> bytes:
        # One retry on a fresh connection: an idle upstream connection may have been closed.
        for attempt in (1, 2):
            connection = await pool.get()
            up_reader, up_writer = connection
            try:
                up_writer.write(request)
                await up_writer.drain()
                head, headers, body = await _read_message(up_reader)
            except (asyncio.IncompleteReadError, ConnectionError):
                up_writer.close()
                if attempt == 2:
                    return b"HTTP/1.1 502 Bad Gateway\r\nContent-Length: 0\r\n\r\n"
                continue
            if headers.get("connection", "").lower() == "close":
                up_writer.close()
            else:
                pool.put(connection)
            return head + body
        raise AssertionError("unreachable")

    def _control(self, method: str, path: str) -> bytes:
        if path.startswith("/__bench/reset") and method == "POST":
            self.counts.clear()
            self.upstream_seconds.clear()
            self.upstream_calls.clear()
        if path.startswith("/__bench/tail"):
            payload = json.dumps(
                {action: _tail(calls) for action, calls in self.upstream_calls.items()}
            ).encode()
        elif path.startswith("/__bench/latency"):
            payload = json.dumps(
                {
                    action: round(1000 * self.upstream_seconds[action] / count, 3)
                    for action, count in self.counts.items()
                }
            ).encode()
        else:
            payload = json.dumps(dict(self.counts)).encode()
        return (
            b"HTTP/1.1 200 OK\r\nContent-Type: application/json\r\nContent-Length: "
            + str(len(payload)).encode()
            + b"\r\n\r\n"
            + payload
        )


def _tail(seconds: list[float]) -> dict[str, float]:
    ordered = sorted(seconds)

    def ms(q: float) -> float:
        return round(1000 * ordered[min(len(ordered) - 1, int(q * len(ordered)))], 3)

    return {"calls": len(ordered), "p50": ms(0.50), "p99": ms(0.99), "max": ms(1.0)}


def _address(url: str) -> Upstream:
    parts = urlsplit(url)
    return parts.hostname or "127.0.0.1", parts.port or 80


async def serve(port: int, default: str, ses: str | None) -> None:
    proxy = CountingProxy(_address(default), _address(ses) if ses else None)
    server = await asyncio.start_server(proxy.handle, "127.0.0.1", port, backlog=1024)
    stop = asyncio.Event()
    loop = asyncio.get_running_loop()
    for sig in (signal.SIGTERM, signal.SIGINT):
        loop.add_signal_handler(sig, stop.set)
    async with server:
        await stop.wait()


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__)
    parser.add_argument("--port", type=int, default=int(os.environ.get("PROXY_PORT", "4567")))
    parser.add_argument(
        "--upstream", required=True, help="SQS emulator, e.g. http://127.0.0.1:4566"
    )
    parser.add_argument("--ses-upstream", default=None, help="SES v2 emulator (default: upstream)")
    args = parser.parse_args()
    try:
        import uvloop

        uvloop.run(serve(args.port, args.upstream, args.ses_upstream))
    except ImportError:
        asyncio.run(serve(args.port, args.upstream, args.ses_upstream))


if __name__ == "__main__":
    main()
