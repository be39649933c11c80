from __future__ import annotations

import asyncio

from limbo_shared.worker.circuit import Circuit, CircuitState


class Dependency:
    def __init__(self) -> None:
        self.healthy = False
        self.asked_at: list[float] = []

    async def probe(self) -> None:
        self.asked_at.append(asyncio.get_running_loop().time())
        if not self.healthy:
            raise ConnectionError("still down")


async def test_a_circuit_starts_closed() -> None:
    circuit = Circuit("dep", Dependency().probe)
    assert circuit.is_closed and circuit.state is CircuitState.CLOSED
    await asyncio.wait_for(circuit.wait_closed(), 0.1)


async def test_only_the_first_trip_opens_it() -> None:
    circuit = Circuit("dep", Dependency().probe, first_probe=10)
    assert circuit.trip("down") is True
    assert circuit.trip("down again") is False
    assert circuit.state is CircuitState.OPEN and circuit.reason == "down"
    await circuit.aclose()


async def test_it_probes_with_growing_backoff_and_closes_when_the_dependency_answers() -> None:
    dependency = Dependency()
    changes: list[CircuitState] = []
    circuit = Circuit(
        "dep",
        dependency.probe,
        first_probe=0.05,
        max_probe=0.4,
        on_change=lambda c: changes.append(c.state),
    )
    circuit.trip("down")
    while len(dependency.asked_at) < 4:
        await asyncio.sleep(0.01)
    gaps = [b - a for a, b in zip(dependency.asked_at, dependency.asked_at[1:], strict=False)]
    assert gaps[1] > gaps[0] * 1.3 and gaps[2] > gaps[1] * 1.3
    assert not circuit.is_closed
    dependency.healthy = True
    await asyncio.wait_for(circuit.wait_closed(), 2)
    assert circuit.is_closed and circuit.reason is None
    assert changes == [CircuitState.OPEN, CircuitState.CLOSED]


async def test_a_probe_that_hangs_counts_as_a_failure() -> None:
    hung = asyncio.Event()

    async def hang() -> None:
        await hung.wait()

    circuit = Circuit("dep", hang, first_probe=0.01, probe_timeout=0.05)
    circuit.trip("down")
    await asyncio.sleep(0.3)
    assert circuit.probes >= 2 and not circuit.is_closed
    await circuit.aclose()


async def test_failing_again_right_after_closing_keeps_the_backoff() -> None:
    dependency = Dependency()
    circuit = Circuit("dep", dependency.probe, first_probe=0.02, max_probe=5)
    circuit.trip("down")
    while len(dependency.asked_at) < 3:
        await asyncio.sleep(0.01)
    dependency.healthy = True
    await asyncio.wait_for(circuit.wait_closed(), 2)
    dependency.healthy = False
    circuit.trip("down again")
    asked = len(dependency.asked_at)
    await asyncio.sleep(0.05)  # the first probe's delay would have passed by now
    assert len(dependency.asked_at) == asked
    await circuit.aclose()
