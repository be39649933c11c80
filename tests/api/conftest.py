from __future__ import annotations

from collections.abc import Iterator
from concurrent.futures import ThreadPoolExecutor
from typing import Any

import pytest
from starlette.testclient import TestClient

from limbo_api.app import create_app
from limbo_api.metrics import ApiMetrics
from limbo_api.settings import ApiSettings
from limbo_devtools.local_aws import LocalAws
from limbo_shared.aws import make_client
from limbo_shared.queue import SqsQueue

VALID: dict[str, Any] = {
    "from": "sender@example.com",
    "to": ["to@example.com"],
    "subject": "Hello",
    "message": "Body",
}

_METRICS = ApiMetrics()  # Prometheus metrics are registered once per process.


def api_settings(aws: LocalAws, **overrides: Any) -> ApiSettings:
    values = {"queue": aws.queue_url, "region": aws.region,
              "aws_endpoint_url": aws.endpoint, "auth": "disabled", **overrides}
    return ApiSettings(**values)


@pytest.fixture
def api(aws: LocalAws) -> Iterator[TestClient]:
    """The real app in-process, publishing to a real moto server over HTTP."""
    client = make_client("sqs", region=aws.region, endpoint_url=aws.endpoint)
    queue = SqsQueue(client, aws.queue_url, ThreadPoolExecutor(4))
    with TestClient(create_app(api_settings(aws), queue, _METRICS)) as test_client:
        yield test_client
