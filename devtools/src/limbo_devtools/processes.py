"""Starting limbo's processes the way the local run does, for people and for tests."""

from __future__ import annotations

import os
import random
import signal
import socket
import subprocess
import sys
import time
from dataclasses import dataclass, field
from pathlib import Path
from typing import IO

import httpx

__all__ = ["Process", "free_port", "script", "wait_http"]


def script(name: str) -> str:
    """A console script installed beside this interpreter (``.venv/bin/<name>``)."""
    candidate = Path(sys.executable).parent / name
    return str(candidate) if candidate.exists() else name


# Ports for the servers this module starts come from below the kernel's ephemeral range,
# one block per pytest-xdist worker. The kernel hands ephemeral ports to every bind(0)
# and every outgoing connection on the machine, so a port that was free when asked for
# could be taken before the server bound it, and a limbo process of another test then
# answered the health check in its place (seen once: a run's API failed to bind, and
# every email went to the other test's server).
_PORT_BLOCK = 1000
_PORT_BLOCKS = 12
_next_port: list[int] = []  # this process's next candidate, drawn once


def _ephemeral_low() -> int:
    try:
        with open("/proc/sys/net/ipv4/ip_local_port_range") as ports:
            return int(ports.read().split()[0])
    except (OSError, ValueError, IndexError):
        return 32768  # Linux's default


def _port_block() -> range:
    """This process's block: the xdist worker's (gw0, gw1, ...), else one by pid."""
    worker = os.environ.get("PYTEST_XDIST_WORKER", "")
    if worker.startswith("gw") and worker[2:].isdigit() and int(worker[2:]) < _PORT_BLOCKS - 4:
        index = int(worker[2:])
    else:
        index = _PORT_BLOCKS - 4 + os.getpid() % 4
    start = _ephemeral_low() - _PORT_BLOCK * (_PORT_BLOCKS - index)
    return range(start, start + _PORT_BLOCK)


def _bindable(port: int) -> bool:
    try:
        with socket.socket() as sock:
            sock.bind(("0.0.0.0", port))
    except OSError:
        return False
    return True


def free_port() -> int:
    """A port no server holds now, from this process's block (see above); from the
    kernel's ephemeral range when the machine leaves no room below it."""
    block = _port_block()
    if block.start < 1024:
        with socket.socket() as sock:
            sock.bind(("127.0.0.1", 0))
            return int(sock.getsockname()[1])
    if not _next_port:
        _next_port.append(block.start + random.randrange(_PORT_BLOCK))
    for _ in range(_PORT_BLOCK):
        port = _next_port[0]
        _next_port[0] = block.start + (port + 1 - block.start) % _PORT_BLOCK
        if _bindable(port):
            return port
    raise RuntimeError(f"no free port in {block.start}-{block.stop - 1}")


# Start-up is import-bound: seen at 25 s on a 2-core machine under heavy load. A guard
# against a process that never comes up, not a measure of how fast it does.
START_TIMEOUT = 90.0


def wait_http(
    url: str, timeout: float = START_TIMEOUT, process: subprocess.Popen[bytes] | None = None
) -> None:
    deadline = time.monotonic() + timeout
    last: Exception | None = None
    # One client for all the polls: each new httpx client loads the CA bundle into an SSL
    # context (about 20 ms of CPU), ten times a second while a process imports.
    with httpx.Client(timeout=1.0) as client:
        while time.monotonic() < deadline:
            if process is not None and process.poll() is not None:
                raise RuntimeError(
                    f"{url}: the process exited with {process.returncode} before answering"
                )
            try:
                if client.get(url).status_code < 500:
                    return
            except httpx.HTTPError as error:
                last = error
            time.sleep(0.1)
    raise TimeoutError(f"{url} did not answer within {timeout}s ({last})")


@dataclass
class Process:
    name: str
    argv: list[str]
    env: dict[str, str] = field(default_factory=dict)
    health_url: str | None = None
    log_path: Path | None = None
    popen: subprocess.Popen[bytes] | None = None
    _log: IO[bytes] | None = None

    def start(self, timeout: float = START_TIMEOUT) -> Process:
        env = {**os.environ, **self.env}
        out: IO[bytes] | int | None = None
        if self.log_path is not None:
            self._log = self.log_path.open("ab")
            out = self._log
        self.popen = subprocess.Popen(self.argv, env=env, stdout=out, stderr=subprocess.STDOUT)
        if self.health_url:
            wait_http(self.health_url, timeout, self.popen)
        return self

    @property
    def pid(self) -> int:
        assert self.popen is not None
        return self.popen.pid

    def signal(self, sig: int) -> None:
        if self.popen is not None and self.popen.poll() is None:
            self.popen.send_signal(sig)

    def stop(self, timeout: float = 30.0) -> int | None:
        """SIGTERM, wait, then SIGKILL; answers the exit code."""
        if self.popen is None:
            return None
        if self.popen.poll() is None:
            self.popen.send_signal(signal.SIGTERM)
            try:
                self.popen.wait(timeout)
            except subprocess.TimeoutExpired:
                self.popen.kill()
                self.popen.wait()
        if self._log is not None:
            self._log.close()
            self._log = None
        return self.popen.returncode

    def kill(self) -> None:
        if self.popen is not None and self.popen.poll() is None:
            self.popen.kill()
            self.popen.wait()
