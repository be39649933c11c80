"""Helpers for the observability tests: one system per module, a burst, a span query."""

from __future__ import annotations

import asyncio
import time
import uuid
from collections.abc import Callable, Iterable
from pathlib import Path
from typing import Any, TypeVar

import httpx

from limbo_devtools.launcher import Launcher
from limbo_devtools.local_aws import LocalAws, provision
from limbo_devtools.otlp_receiver import ReceivedSpan
from limbo_devtools.processes import Process

T = TypeVar("T")


def fresh_queue(moto_endpoint: str) -> LocalAws:
    return provision(
        moto_endpoint,
        queue_name=f"o{uuid.uuid4().hex[:12]}.fifo",
        sender="limbo@example.com",
        visibility_timeout=30,
    )


def start_sink(logs: Path, **env: str) -> tuple[Process, str]:
    """A sink the caller stops (its key is ``key-test`` unless ``SINK_API_KEY`` says)."""
    return Launcher(logs).start("sink", extra=env)


def post_burst(api: str, mails: list[dict[str, Any]]) -> list[httpx.Response]:
    """POST every mail at once, so the API's publisher has company to batch."""

    async def send_all() -> list[httpx.Response]:
        async with httpx.AsyncClient(timeout=15) as client:
            return await asyncio.gather(*(client.post(f"{api}/v1/mail", json=m) for m in mails))

    return asyncio.run(send_all())


def wait_for(predicate: Callable[[], T | None], timeout: float = 45.0, what: str = "") -> T:
    """Poll until ``predicate`` is truthy; generous, as the machine may be shared and busy."""
    deadline = time.monotonic() + timeout
    while True:
        value = predicate()
        if value:
            return value
        if time.monotonic() > deadline:
            raise AssertionError(f"not within {timeout}s: {what}")
        time.sleep(0.1)


def one(spans: Iterable[ReceivedSpan], **where: Any) -> ReceivedSpan:
    """The single span whose fields equal ``where`` (fails on none or several)."""
    found = [s for s in spans if all(getattr(s, k) == v for k, v in where.items())]
    assert len(found) == 1, f"expected one span with {where}, found {len(found)}: {found}"
    return found[0]
