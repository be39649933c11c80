"""limbo's uvicorn server: at rest it wakes once a second, not ten times, and a request
to stop (exit, or the signal uvicorn captured) is acted on at once, not at the next tick."""

from __future__ import annotations

import asyncio
import contextlib
import signal
import socket
import time
from collections.abc import Iterator

import httpx
import uvicorn
from starlette.applications import Starlette
from starlette.requests import Request
from starlette.responses import PlainTextResponse
from starlette.routing import Route

from limbo_shared.serving import Server


async def hello(request: Request) -> PlainTextResponse:
    return PlainTextResponse("hello")


class CountingServer(Server):
    """Counts uvicorn's housekeeping ticks: each is one wake-up of an idle process. It
    installs no signal handlers: uvicorn raises a captured signal again when it stops,
    which would end the test run."""

    ticks = 0

    @contextlib.contextmanager
    def capture_signals(self) -> Iterator[None]:
        yield

    async def on_tick(self, counter: int) -> bool:
        self.ticks += 1
        return await super().on_tick(counter)


def server(tick_seconds: float = 1.0) -> tuple[CountingServer, int]:
    listener = socket.socket()
    listener.bind(("127.0.0.1", 0))
    port = listener.getsockname()[1]
    listener.close()
    config = uvicorn.Config(
        Starlette(routes=[Route("/", hello)]),
        host="127.0.0.1",
        port=port,
        log_config=None,
        lifespan="off",
    )
    made = CountingServer(config)
    made.tick_seconds = tick_seconds
    return made, port


async def started(made: Server) -> asyncio.Task[None]:
    task = asyncio.create_task(made.serve())
    while not made.started:
        await asyncio.sleep(0.01)
    return task


async def test_at_rest_it_ticks_once_a_second_and_still_sends_a_date() -> None:
    made, port = server()
    task = await started(made)
    async with httpx.AsyncClient() as client:
        answer = await client.get(f"http://127.0.0.1:{port}/")
    await asyncio.sleep(2.5)
    made.exit()
    await asyncio.wait_for(task, 5)
    assert answer.text == "hello" and "date" in answer.headers
    # uvicorn's own loop ticks every 100 ms: about 25 in this time.
    assert 2 <= made.ticks <= 4


async def test_exit_stops_it_at_once_however_long_the_tick() -> None:
    made, _ = server(tick_seconds=60)
    task = await started(made)
    await asyncio.sleep(0.2)  # now waiting for its next tick
    began = time.monotonic()
    made.exit()
    await asyncio.wait_for(task, 5)
    assert time.monotonic() - began < 1.0


async def test_a_captured_signal_stops_it_at_once() -> None:
    made, _ = server(tick_seconds=60)
    task = await started(made)
    await asyncio.sleep(0.2)
    began = time.monotonic()
    made.handle_exit(signal.SIGTERM, None)  # what uvicorn's signal handler calls
    await asyncio.wait_for(task, 5)
    assert time.monotonic() - began < 1.0
