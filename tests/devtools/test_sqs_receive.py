"""limbo-moto's ReceiveMessage: one message to one receiver, and waits that do not spin.

In-process, against moto's own SQS backend with the patch applied (as limbo-moto applies
it at start): the race is between two threads of one server process.
"""

from __future__ import annotations

import collections
import sys
import threading
import time
import uuid
from collections.abc import Iterator

import pytest
from moto.core.models import DEFAULT_ACCOUNT_ID
from moto.sqs.models import SQSBackend, sqs_backends

from limbo_devtools.sqs_receive import serialise_receives

MESSAGES = 200


@pytest.fixture
def backend() -> SQSBackend:
    serialise_receives()
    return sqs_backends[DEFAULT_ACCOUNT_ID]["us-east-1"]


@pytest.fixture
def frequent_thread_switches() -> Iterator[None]:
    # A thread switch every 10 microseconds instead of every 5 ms: a check-then-act race
    # between threads shows in almost every run instead of one in thousands.
    previous = sys.getswitchinterval()
    sys.setswitchinterval(1e-5)
    yield
    sys.setswitchinterval(previous)


def test_concurrent_receives_never_take_the_same_message(
    backend: SQSBackend, frequent_thread_switches: None
) -> None:
    queue = backend.create_queue(f"race-{uuid.uuid4().hex[:8]}")
    for index in range(MESSAGES):
        backend.send_message(queue.name, f"m{index}")
    received: collections.Counter[str] = collections.Counter()
    lock = threading.Lock()

    def receive_until_empty() -> None:
        while messages := backend.receive_message(queue.name, 10, 0, 60):
            with lock:
                received.update(message.id for message in messages)

    threads = [threading.Thread(target=receive_until_empty) for _ in range(6)]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join(60)
    assert len(received) == MESSAGES
    assert [id_ for id_, count in received.items() if count > 1] == []


def test_a_long_poll_behind_an_in_flight_fifo_group_sleeps_instead_of_rescanning(
    backend: SQSBackend,
) -> None:
    queue = backend.create_queue(
        f"wait-{uuid.uuid4().hex[:8]}.fifo", FifoQueue="true", ContentBasedDeduplication="true"
    )
    for body in ("first", "second"):
        backend.send_message(queue.name, body, group_id="lane")
    assert len(backend.receive_message(queue.name, 1, 0, 60)) == 1
    # "second" is visible, but its group is in flight: nothing can be received.
    cpu, wall = time.thread_time(), time.monotonic()
    assert backend.receive_message(queue.name, 10, 1, 60) == []
    cpu, wall = time.thread_time() - cpu, time.monotonic() - wall
    assert wall >= 1.0
    # Rescanning without pause took the whole second of CPU; 20 scans take milliseconds.
    assert cpu < 0.25, f"{cpu:.2f} s of CPU in a {wall:.2f} s wait"


def test_a_send_wakes_a_waiting_poll_at_once(backend: SQSBackend) -> None:
    queue = backend.create_queue(f"wake-{uuid.uuid4().hex[:8]}")
    found: list[str] = []
    poll = threading.Thread(
        target=lambda: found.extend(m.body for m in backend.receive_message(queue.name, 10, 5, 60))
    )
    poll.start()
    time.sleep(0.2)
    sent = time.monotonic()
    backend.send_message(queue.name, "hello")
    poll.join(10)
    assert found == ["hello"]
    assert time.monotonic() - sent < 1.0
