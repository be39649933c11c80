"""A fixed-rate, open-loop HTTP load generator (asyncio, raw HTTP/1.1 keep-alive).

Request *i* is due at ``start + i / rate`` and is sent then whatever happened to the
earlier ones: a slow server gets more connections, not fewer requests. Latency is
measured from the due time, so time spent waiting for a free connection counts
(no coordinated omission).
"""

from __future__ import annotations

import asyncio
import contextlib
import gc
import json
import time
from collections.abc import Callable, Iterator
from dataclasses import dataclass

__all__ = ["Result", "Sample", "mail_body", "run_open_loop"]


@dataclass(frozen=True)
class Sample:
    index: int
    sent_at: float  # wall clock (time.time()) at the due time, to match provider receipts
    latency: float  # seconds from the due time to the full response
    status: int


@dataclass
class Result:
    rate: float
    duration: float
    samples: list[Sample]
    late: int  # requests not answered before the run's deadline

    @property
    def ok(self) -> list[Sample]:
        return [s for s in self.samples if s.status == 200]


def mail_body(subject: str, index: int = 0) -> bytes:
    # A new recipient each time (the sender repeats, as in real traffic).
    return json.dumps(
        {
            "from": "bench@example.com",
            "to": [f"someone{index}@example.com"],
            "subject": subject,
            "message": "Hello from the limbo benchmark. " * 8,
        }
    ).encode()


class _Connections:
    def __init__(self, host: str, port: int, limit: int) -> None:
        self.host, self.port = host, port
        self.idle: list[tuple[asyncio.StreamReader, asyncio.StreamWriter]] = []
        self.slots = asyncio.Semaphore(limit)

    async def request(self, raw: bytes) -> int:
        async with self.slots:
            reader, writer = (
                self.idle.pop()
                if self.idle
                else await asyncio.open_connection(self.host, self.port)
            )
            try:
                writer.write(raw)
                head = await reader.readuntil(b"\r\n\r\n")
                length = 0
                for line in head.split(b"\r\n")[1:]:
                    if line[:15].lower() == b"content-length:":
                        length = int(line[15:])
                await reader.readexactly(length)
            except (ConnectionError, asyncio.IncompleteReadError):
                writer.close()
                return 0
            self.idle.append((reader, writer))
            return int(head.split(b" ", 2)[1])

    def close(self) -> None:
        for _, writer in self.idle:
            writer.close()


@contextlib.contextmanager
def without_pauses() -> Iterator[None]:
    """No garbage collection while the generator runs: with a whole run's results in
    memory, the bench process's full collections took 50-100 ms, and every request due
    meanwhile was sent late and counted against the server. What the run makes is freed
    (and collected) afterwards."""
    gc.collect()
    gc.freeze()
    gc.disable()
    try:
        yield
    finally:
        gc.enable()
        gc.unfreeze()


async def run_open_loop(
    host: str,
    port: int,
    path: str,
    *,
    rate: float,
    duration: float,
    body: Callable[[int], bytes],
    max_connections: int = 512,
    grace: float = 10.0,
    headers: str = "",
) -> Result:
    with without_pauses():
        return await _run(host, port, path, rate, duration, body, max_connections, grace, headers)


async def _run(
    host: str,
    port: int,
    path: str,
    rate: float,
    duration: float,
    body: Callable[[int], bytes],
    max_connections: int,
    grace: float,
    headers: str,
) -> Result:
    connections = _Connections(host, port, max_connections)
    count = int(rate * duration)
    samples: list[Sample] = []

    async def one(index: int, due: float, wall: float) -> None:
        payload = body(index)
        raw = (
            f"POST {path} HTTP/1.1\r\nHost: {host}:{port}\r\n"
            f"Content-Type: application/json\r\nContent-Length: {len(payload)}\r\n"
            f"{headers}\r\n"
        ).encode() + payload
        status = await connections.request(raw)
        samples.append(Sample(index, wall, time.perf_counter() - due, status))

    tasks = []
    # perf_counter, not loop.time(): uvloop's clock ticks in whole milliseconds.
    start = time.perf_counter() + 0.05
    wall_start = time.time() + 0.05
    for index in range(count):
        due = start + index / rate
        delay = due - time.perf_counter()
        if delay > 0:
            await asyncio.sleep(delay)
        tasks.append(asyncio.create_task(one(index, due, wall_start + index / rate)))
    _, pending = await asyncio.wait(tasks, timeout=grace) if tasks else (set(), set())
    for task in pending:
        task.cancel()
    connections.close()
    return Result(rate, duration, sorted(samples, key=lambda s: s.index), len(pending))
