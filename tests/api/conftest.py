from __future__ import annotations

from collections.abc import Iterator
from typing import Any

import pytest
from starlette.testclient import TestClient

from limbo_api.app import create_app
from limbo_api.metrics import ApiMetrics
from limbo_api.settings import ApiSettings
from limbo_api.sqs_client import publishing_client
from limbo_devtools.local_aws import LocalAws
from limbo_shared.queue import SqsQueue

VALID: dict[str, Any] = {
    "from": "sender@example.com",
    "to": ["to@example.com"],
    "subject": "Hello",
    "message": "Body",
}

_METRICS = ApiMetrics()  # Prometheus metrics are registered once per process.


def api_settings(aws: LocalAws, **overrides: Any) -> ApiSettings:
    values = {
        "queue": aws.queue_url,
        "region": aws.region,
        "aws_endpoint_url": aws.endpoint,
        "auth": "disabled",
        **overrides,
    }
    return ApiSettings(**values)


@pytest.fixture
def api(aws: LocalAws) -> Iterator[TestClient]:
    """The real app in-process, publishing to a real moto server over HTTP."""
    settings = api_settings(aws)
    queue = SqsQueue(publishing_client(settings, 8, deduplicated=True), aws.queue_url)
    with TestClient(create_app(settings, queue, _METRICS)) as test_client:
        yield test_client


ALICE_KEY = "limbo_alice-test-key-0000000000000000000000000"
BOB_KEY = "limbo_bob-test-key-00000000000000000000000000000"


def bearer(key: str) -> dict[str, str]:
    return {"Authorization": f"Bearer {key}"}


class ApiFactory:
    """Builds the real app in-process against moto, with whatever settings a test needs."""

    def __init__(self, aws: LocalAws) -> None:
        self.aws = aws
        self._clients: list[TestClient] = []

    def __call__(self, endpoint: str | None = None, **overrides: Any) -> TestClient:
        from limbo_api.auth import hash_key

        defaults: dict[str, Any] = {
            "auth": "enabled",
            "api_keys": f"alice={hash_key(ALICE_KEY)},bob={hash_key(BOB_KEY)}",
        }
        if self.aws.status_table:
            defaults["status_table"] = self.aws.status_table
        settings = api_settings(self.aws, **{**defaults, **overrides})
        if endpoint is not None:
            settings = settings.model_copy(update={"aws_endpoint_url": endpoint})
        # The client the API runs with (limbo_api/__main__.py).
        queue = SqsQueue(publishing_client(settings, 8, deduplicated=True), self.aws.queue_url)
        test_client = TestClient(create_app(settings, queue, _METRICS))
        test_client.__enter__()
        self._clients.append(test_client)
        return test_client

    def close(self) -> None:
        for client in self._clients:
            client.__exit__(None, None, None)


@pytest.fixture
def api_factory(aws: LocalAws) -> Iterator[ApiFactory]:
    """In-process APIs with API keys for alice and bob."""
    factory = ApiFactory(aws)
    yield factory
    factory.close()


@pytest.fixture
def tracked_api_factory(tracked_aws: LocalAws) -> Iterator[ApiFactory]:
    """In-process APIs with API keys for alice and bob and tracking on."""
    factory = ApiFactory(tracked_aws)
    yield factory
    factory.close()


@pytest.fixture
def tracked_api(tracked_api_factory: ApiFactory) -> TestClient:
    return tracked_api_factory()
