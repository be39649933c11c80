"""A TCP proxy on loopback that can take its upstream away: refuse or stall connections.

Put in front of the SQS emulator (``AWS_ENDPOINT_URL`` pointing at the proxy), it plays
an outage the way a network or a load balancer does:

- ``refuse()``: the listening socket is closed (new connections get ECONNREFUSED) and
  open connections are reset;
- ``stall()``: connections are accepted but nothing is forwarded either way, so calls
  hang until the client's own timeout (a black hole);
- ``restore()``: forwarding again; connections held during a stall are dropped, as a
  middlebox that lost their state would.

It runs its own event loop on a thread, so a test or a command can drive it from plain
synchronous code. ``python -m limbo_devtools.tcp_proxy`` runs one from the command line.
"""

from __future__ import annotations

import argparse
import asyncio
import contextlib
import socket
import struct
import threading
import time
from concurrent.futures import Future
from typing import Literal

__all__ = ["FaultyProxy"]

Mode = Literal["pass", "stall", "refuse"]
_CHUNK = 65536


class FaultyProxy:
    def __init__(self, upstream_host: str, upstream_port: int, port: int = 0) -> None:
        self.upstream = (upstream_host, upstream_port)
        self.host = "127.0.0.1"
        self.port = port
        self.mode: Mode = "pass"
        # Connections accepted in each mode: how hard clients knock during an outage.
        self.accepted: dict[str, int] = {"pass": 0, "stall": 0, "refuse": 0}
        self._loop = asyncio.new_event_loop()
        self._thread = threading.Thread(
            target=self._loop.run_forever, name="tcp-proxy", daemon=True
        )
        self._server: asyncio.Server | None = None
        self._connections: set[asyncio.StreamWriter] = set()
        self._stalled: set[asyncio.StreamWriter] = set()

    @property
    def url(self) -> str:
        return f"http://{self.host}:{self.port}"

    # -- control, from any thread ------------------------------------------------------

    def start(self) -> FaultyProxy:
        self._thread.start()
        self._call(self._listen())
        return self

    def refuse(self) -> None:
        self._call(self._set("refuse"))

    def stall(self) -> None:
        self._call(self._set("stall"))

    def restore(self) -> None:
        self._call(self._set("pass"))

    def close(self) -> None:
        if not self._thread.is_alive():
            return
        self._call(self._close())
        self._loop.call_soon_threadsafe(self._loop.stop)
        self._thread.join(timeout=5)
        self._loop.close()

    def __enter__(self) -> FaultyProxy:
        return self.start()

    def __exit__(self, *_: object) -> None:
        self.close()

    def _call(self, coroutine: object) -> None:
        future: Future[None] = asyncio.run_coroutine_threadsafe(coroutine, self._loop)  # type: ignore[arg-type]
        future.result(timeout=10)

    # -- on the proxy's loop -------------------------------------------------------------

    async def _listen(self) -> None:
        self._server = await asyncio.start_server(
            self._accept, self.host, self.port, reuse_address=True
        )
        self.port = self._server.sockets[0].getsockname()[1]

    async def _set(self, mode: Mode) -> None:
        previous, self.mode = self.mode, mode
        if mode == "refuse":
            if self._server is not None:
                self._server.close()
                await self._server.wait_closed()
                self._server = None
            for writer in list(self._connections):
                _reset(writer)
        elif mode == "pass":
            for writer in list(self._stalled):
                _reset(writer)
            if self._server is None:
                await self._listen()
        elif mode == "stall" and previous == "refuse" and self._server is None:
            await self._listen()

    async def _close(self) -> None:
        if self._server is not None:
            self._server.close()
            await self._server.wait_closed()
            self._server = None
        for writer in list(self._connections):
            _reset(writer)
        # Let the handlers see their connections end before the loop stops; on a loaded
        # machine some may not in time: cancel them and close what they held, or their
        # transports would be collected open later, as a warning in someone else's test.
        tasks = [t for t in asyncio.all_tasks() if t is not asyncio.current_task()]
        if tasks:
            await asyncio.wait(tasks, timeout=2)
            for task in tasks:
                task.cancel()
            await asyncio.gather(*tasks, return_exceptions=True)
        for writer in list(self._connections):
            writer.transport.abort()
        self._connections.clear()
        self._stalled.clear()

    async def _accept(self, reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
        self.accepted[self.mode] += 1
        self._connections.add(writer)
        try:
            if self.mode == "stall":
                await self._hold(reader, writer)
                return
            try:
                up_reader, up_writer = await asyncio.open_connection(*self.upstream)
            except OSError:
                _reset(writer)
                return
            self._connections.add(up_writer)
            pipes = [
                asyncio.ensure_future(self._pipe(reader, up_writer, writer)),
                asyncio.ensure_future(self._pipe(up_reader, writer, up_writer)),
            ]
            try:
                # HTTP clients do not half-close: when one side ends, the pair is over.
                await asyncio.wait(pipes, return_when=asyncio.FIRST_COMPLETED)
            finally:
                for pipe in pipes:
                    pipe.cancel()
                self._connections.discard(up_writer)
                _reset(up_writer)
        finally:
            self._connections.discard(writer)
            self._stalled.discard(writer)
            with contextlib.suppress(Exception):
                writer.close()

    async def _hold(self, reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
        """Swallow what the client sends and never answer."""
        self._stalled.add(writer)
        while await reader.read(_CHUNK):
            pass

    async def _pipe(
        self, source: asyncio.StreamReader, sink: asyncio.StreamWriter, own: asyncio.StreamWriter
    ) -> None:
        try:
            while data := await source.read(_CHUNK):
                if self.mode == "stall":
                    # A connection caught in a stall goes silent in both directions.
                    self._stalled.add(own)
                    continue
                sink.write(data)
                await sink.drain()
        except (ConnectionError, OSError):
            pass


def _reset(writer: asyncio.StreamWriter) -> None:
    """Close with RST, as a refused or dropped connection looks to the client."""
    sock = writer.get_extra_info("socket")
    if sock is not None:
        with contextlib.suppress(OSError):
            sock.setsockopt(socket.SOL_SOCKET, socket.SO_LINGER, struct.pack("ii", 1, 0))
    writer.transport.abort()


def main() -> None:
    parser = argparse.ArgumentParser(
        description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter
    )
    parser.add_argument("--port", type=int, default=0)
    parser.add_argument("--upstream", required=True, help="host:port to forward to")
    parser.add_argument("--outage", choices=["refuse", "stall"], default=None)
    parser.add_argument("--after", type=float, default=10.0, help="seconds before the outage")
    parser.add_argument("--duration", type=float, default=15.0, help="seconds of outage")
    args = parser.parse_args()
    host, _, port = args.upstream.rpartition(":")
    with FaultyProxy(host or "127.0.0.1", int(port), args.port) as proxy:
        print(f"proxy {proxy.url} -> {args.upstream}", flush=True)
        if args.outage:
            time.sleep(args.after)
            getattr(proxy, args.outage)()
            print(f"outage: {args.outage} for {args.duration}s", flush=True)
            time.sleep(args.duration)
            proxy.restore()
            print("restored", flush=True)
        with contextlib.suppress(KeyboardInterrupt):
            while True:
                time.sleep(3600)


if __name__ == "__main__":
    main()
