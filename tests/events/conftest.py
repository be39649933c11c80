from __future__ import annotations

import time
import uuid
from collections.abc import Callable, Iterator
from pathlib import Path
from typing import Any

import httpx
import pytest

from limbo_devtools.local_aws import LocalAws, provision

from ..conftest import Limbo
from ..http_client import HTTP

WEBHOOK_KEY = "test-webhook-signing-key"


@pytest.fixture
def events_aws(moto_endpoint: str) -> LocalAws:
    """A tracked system with the delivery-event path: topic, events queue, configuration set."""
    name = f"t{uuid.uuid4().hex[:12]}"
    return provision(
        moto_endpoint,
        queue_name=f"{name}.fifo",
        visibility_timeout=30,
        status_table=f"{name}-status",
        events=True,
    )


@pytest.fixture
def events_limbo(events_aws: LocalAws, tmp_path: Path) -> Iterator[Limbo]:
    logs = tmp_path / "events-logs"
    logs.mkdir()
    system = Limbo(events_aws, logs)
    yield system
    system.stop()


def wait_for(
    condition: Callable[[], Any], *, timeout: float = 90.0, what: str = "condition"
) -> Any:
    """Poll until ``condition()`` is truthy; generous, because the machine may be busy."""
    deadline = time.monotonic() + timeout
    value = None
    while time.monotonic() < deadline:
        value = condition()
        if value:
            return value
        time.sleep(0.2)
    raise AssertionError(f"timed out after {timeout}s waiting for {what}; last: {value!r}")


def status(api: str, message_id: str) -> dict[str, Any]:
    return dict(HTTP.get(f"{api}/v1/mail/{message_id}", timeout=10).json())


def outcomes(api: str, message_id: str) -> dict[str, dict[str, Any]]:
    return {entry["recipient"]: entry for entry in status(api, message_id)["delivery"]}


def send(api: str, *to: str, **fields: Any) -> httpx.Response:
    body = {"from": "limbo@example.com", "to": list(to), "subject": "S", "message": "B", **fields}
    return HTTP.post(f"{api}/v1/mail", json=body, timeout=10)


def suppressed(api: str) -> set[str]:
    answer = HTTP.get(f"{api}/v1/suppressions", timeout=10).json()
    return {entry["address"] for entry in answer["suppressions"]}
