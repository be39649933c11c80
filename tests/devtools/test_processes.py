"""free_port: ports that no other test's server can be handed between asking and binding."""

from __future__ import annotations

import socket
import subprocess
import sys

from limbo_devtools.processes import free_port


def _ephemeral_low() -> int:
    with open("/proc/sys/net/ipv4/ip_local_port_range") as ports:
        return int(ports.read().split()[0])


def test_ports_come_from_below_the_ephemeral_range_and_are_bindable() -> None:
    ports = [free_port() for _ in range(20)]
    assert all(1024 <= port < _ephemeral_low() for port in ports)
    assert len(set(ports)) == 20  # one process never hands the same port out twice running
    with socket.socket() as sock:
        sock.bind(("0.0.0.0", ports[-1]))


def test_a_port_a_server_holds_is_skipped() -> None:
    first = free_port()
    with socket.socket() as held:
        # Hold the next port in the block, as another server would.
        held.bind(("0.0.0.0", first + 1))
        held.listen()
        assert free_port() not in (first, first + 1)


def _port_in(worker: str) -> int:
    code = "from limbo_devtools.processes import free_port; print(free_port())"
    env = {"PYTEST_XDIST_WORKER": worker, "PATH": ""}
    return int(subprocess.run([sys.executable, "-c", code], env=env, check=True,
                              capture_output=True, text=True).stdout)  # fmt: skip


def test_each_xdist_worker_draws_from_its_own_block() -> None:
    # Twelve blocks of 1,000 below the ephemeral range; worker gwK takes block K.
    low = _ephemeral_low()
    for index in range(3):
        start = low - 1000 * (12 - index)
        assert start <= _port_in(f"gw{index}") < start + 1000
