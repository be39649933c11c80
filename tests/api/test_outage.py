"""A queue that cannot be reached gives a bounded 503, never a hang or a 500."""

from __future__ import annotations

import time
from concurrent.futures import ThreadPoolExecutor

from starlette.testclient import TestClient

from limbo_api.app import create_app
from limbo_api.settings import ApiSettings
from limbo_devtools.processes import free_port
from limbo_shared.aws import make_client
from limbo_shared.queue import SqsQueue

from .conftest import _METRICS, VALID


def test_unreachable_queue_gives_503_with_retry_after() -> None:
    endpoint = f"http://127.0.0.1:{free_port()}"  # nothing listens there
    url = f"{endpoint}/123456789012/gone.fifo"
    settings = ApiSettings(
        queue=url, region="us-east-1", aws_endpoint_url=endpoint, publish_timeout=5, auth="disabled"
    )
    client = make_client("sqs", region="us-east-1", endpoint_url=endpoint, max_attempts=1)
    app = create_app(settings, SqsQueue(client, url, ThreadPoolExecutor(2)), _METRICS)
    with TestClient(app) as api:
        started = time.monotonic()
        response = api.post("/v1/mail", json=VALID)
        assert time.monotonic() - started < 6
        assert response.status_code == 503
        assert response.headers["Retry-After"] == "5"
        assert response.json()["Message"] == "not submitted"
        assert api.get("/ready").status_code == 503
        assert api.get("/health").status_code == 200
