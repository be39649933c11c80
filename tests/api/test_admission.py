"""A bounded number of requests at work at once, and /health answering past the bound."""

from __future__ import annotations

import socket
import time

from ..conftest import Limbo
from ..http_client import HTTP
from .conftest import VALID

STALLED = (
    b"POST /v1/mail HTTP/1.1\r\nHost: limbo\r\nContent-Type: application/json\r\n"
    b"Content-Length: 500\r\n\r\n{"
)


def test_past_max_concurrent_requests_work_is_refused_at_once_and_probes_still_answer(
    limbo: Limbo,
) -> None:
    _, url = limbo.api(MAX_CONCURRENT_REQUESTS="3", CLIENT_TIMEOUT="20")
    host, port = url.removeprefix("http://").split(":")
    held = [socket.create_connection((host, int(port))) for _ in range(3)]
    try:
        for sock in held:
            sock.sendall(STALLED)  # admitted, then waiting for a body that never comes
        deadline = time.monotonic() + 10
        while True:
            refused = HTTP.post(f"{url}/v1/mail", json=VALID, timeout=10)
            if refused.status_code == 503 or time.monotonic() > deadline:
                break
            time.sleep(0.1)  # the held requests may not have reached the app yet
        assert refused.status_code == 503
        assert refused.headers["retry-after"] == "1"
        assert "MAX_CONCURRENT_REQUESTS=3" in refused.json()["Problem"]
        for path in ("/health", "/ready"):
            assert HTTP.get(f"{url}{path}", timeout=10).status_code == 200
    finally:
        for sock in held:
            sock.close()
    # Once the held ones are gone, work is admitted again.
    deadline = time.monotonic() + 10
    while HTTP.post(f"{url}/v1/mail", json=VALID, timeout=10).status_code != 200:
        assert time.monotonic() < deadline, "still refusing after the held requests closed"
        time.sleep(0.1)
