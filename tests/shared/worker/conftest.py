from __future__ import annotations

import asyncio
from collections.abc import AsyncIterator, Callable
from typing import Any

import pytest

from limbo_shared.worker.consumer import Consumer
from limbo_shared.worker.settings import ConsumerSettings, WorkerSettings

QUEUE = "http://sqs.invalid/123/fake.fifo"
DEAD = "http://sqs.invalid/123/fake-dead.fifo"


def consumer_settings(**overrides: Any) -> ConsumerSettings:
    values: dict[str, Any] = {
        "queue": QUEUE,
        "region": "us-east-1",
        "deadletterqueue": DEAD,
        "wait_time_seconds": 1,
        "concurrency": 20,
        "shutdown_grace": 5,
        "max_attempts": 5,
        "retry_base_seconds": 1,
    }
    return ConsumerSettings(**{**values, **overrides})


def worker_settings(**overrides: Any) -> WorkerSettings:
    values: dict[str, Any] = {
        "queue": QUEUE,
        "region": "us-east-1",
        "deadletterqueue": DEAD,
        "wait_time_seconds": 1,
        "concurrency": 20,
        "send_timeout": 2,
        "shutdown_grace": 6,
        "max_attempts": 5,
        "retry_base_seconds": 1,
        "status_table": None,
    }
    return WorkerSettings(**{**values, **overrides})


class Running:
    """A consumer running on the test's event loop until ``stop``."""

    def __init__(self, consumer: Consumer) -> None:
        self.consumer = consumer
        self.task = asyncio.ensure_future(consumer.run())

    async def stop(self, timeout: float = 15.0) -> None:
        self.consumer.stop()
        await asyncio.wait_for(self.task, timeout)


@pytest.fixture
async def running() -> AsyncIterator[Callable[[Consumer], Running]]:
    started: list[Running] = []

    def start(consumer: Consumer) -> Running:
        run = Running(consumer)
        started.append(run)
        return run

    yield start
    for run in started:
        if not run.task.done():
            await run.stop()
