"""LeanTransport speaks enough HTTP/1.1 for a provider API, over real loopback sockets."""

from __future__ import annotations

import asyncio
from collections.abc import Awaitable, Callable

import httpx
import pytest

from limbo_mailgun_worker.transport import LeanTransport

Answer = Callable[[asyncio.StreamReader, asyncio.StreamWriter], Awaitable[None]]


async def serve(answer: Answer) -> tuple[asyncio.Server, str, list[int]]:
    connections: list[int] = []

    async def handle(reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
        connections.append(1)
        try:
            while True:
                head = await reader.readuntil(b"\r\n\r\n")
                length = next((int(line.split(b":")[1]) for line in head.split(b"\r\n")
                               if line.lower().startswith(b"content-length:")), 0)
                await reader.readexactly(length)
                await answer(reader, writer)
                if writer.is_closing():
                    return
        except (asyncio.IncompleteReadError, ConnectionError):
            pass
        finally:
            writer.close()

    server = await asyncio.start_server(handle, "127.0.0.1", 0)
    port = server.sockets[0].getsockname()[1]
    return server, f"http://127.0.0.1:{port}/v3/mg/messages", connections


async def post(transport: LeanTransport, url: str, timeout: float = 5.0) -> httpx.Response:
    request = httpx.Request("POST", url, content=b"from=a&to=b",
                            extensions={"timeout": {"connect": timeout, "read": timeout}})
    response: httpx.Response = await transport.handle_async_request(request)
    await response.aread()
    return response


async def test_keep_alive_reuses_one_connection() -> None:
    async def answer(reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
        writer.write(b'HTTP/1.1 200 OK\r\nContent-Length: 11\r\n\r\n{"id": "x"}')

    server, url, connections = await serve(answer)
    transport = LeanTransport()
    async with server:
        for _ in range(3):
            response = await post(transport, url)
            assert response.status_code == 200 and response.json() == {"id": "x"}
        await transport.aclose()
        await asyncio.sleep(0.05)
    assert len(connections) == 1


async def test_chunked_body_and_connection_close() -> None:
    async def answer(reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
        writer.write(b"HTTP/1.1 429 Too Many\r\nTransfer-Encoding: chunked\r\n"
                     b"Retry-After: 3\r\nConnection: close\r\n\r\n"
                     b"5\r\nhello\r\n6\r\n world\r\n0\r\n\r\n")
        await writer.drain()
        writer.close()

    server, url, connections = await serve(answer)
    transport = LeanTransport()
    async with server:
        for _ in range(2):
            response = await post(transport, url)
            assert response.status_code == 429
            assert response.text == "hello world" and response.headers["retry-after"] == "3"
        await transport.aclose()
        await asyncio.sleep(0.05)
    assert len(connections) == 2  # "Connection: close" is honoured, never reused


async def test_timeouts_and_refusals_map_to_httpx_errors() -> None:
    async def silent(reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
        await asyncio.sleep(0.5)
        writer.close()

    server, url, _ = await serve(silent)
    transport = LeanTransport()
    async with server:
        with pytest.raises(httpx.ReadTimeout):
            await post(transport, url, timeout=0.2)
        await asyncio.sleep(0.6)  # let the silent handler finish and close its socket
    with pytest.raises(httpx.ConnectError):
        await post(transport, url)  # the server is gone
    await transport.aclose()
    await asyncio.sleep(0.05)  # closed sockets are released on the next loop turns
