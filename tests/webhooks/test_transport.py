"""One attempt over real loopback sockets: the connect-time destination check, no
redirects, a bounded answer, a bounded attempt; signatures checked by the library."""

from __future__ import annotations

import socket
import threading
import time
from collections.abc import Iterator
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from typing import Any

import pytest
from standardwebhooks.webhooks import Webhook

from limbo_shared.webhooks import (
    DeliveryJob,
    DestinationSettings,
    Endpoint,
    EventType,
    event_payload,
)
from limbo_webhooks.transport import Deliverer


class _Server(ThreadingHTTPServer):
    daemon_threads = True
    requests: list[dict[str, Any]]
    huge_bytes_sent: int = 0


class _Handler(BaseHTTPRequestHandler):
    server: _Server

    def log_message(self, *args: Any) -> None:
        pass

    def do_POST(self) -> None:
        body = self.rfile.read(int(self.headers["content-length"]))
        self.server.requests.append(
            {"path": self.path, "headers": dict(self.headers), "body": body}
        )
        if self.path == "/redirect":
            self.send_response(307)
            self.send_header("Location", "/target")
            self.send_header("Content-Length", "0")
            self.end_headers()
        elif self.path == "/huge":
            self.send_response(200)
            self.send_header("Content-Length", str(50 * 1024 * 1024))
            self.end_headers()
            chunk = b"x" * 65536
            try:
                for _ in range(800):
                    self.wfile.write(chunk)
                    self.server.huge_bytes_sent += len(chunk)
            except OSError:
                pass  # the client hung up after its bound: what the test wants
        elif self.path == "/slow":
            time.sleep(3)
            self.send_response(204)
            self.end_headers()
        else:
            self.send_response(204)
            self.end_headers()


@pytest.fixture
def server() -> Iterator[_Server]:
    httpd = _Server(("127.0.0.1", 0), _Handler)
    httpd.requests = []
    thread = threading.Thread(target=httpd.serve_forever, daemon=True)
    thread.start()
    yield httpd
    httpd.shutdown()
    httpd.server_close()


def _endpoint(url: str) -> Endpoint:
    return Endpoint(
        id="ep_" + "0" * 32,
        url=url,
        events=(EventType.SENT,),
        secret="whsec_" + "MfKQ9r8GKYqrTwjUPD8ILPZIo2LaLaSw",
        created_at=0.0,
    )


def _job() -> DeliveryJob:
    payload = event_payload(EventType.SENT, "m-1", occurred_at=time.time())
    return DeliveryJob.for_event("alice", "ep_1", EventType.SENT, payload, time.time())


def _deliverer(allow: str = "127.0.0.1", timeout: float = 5.0) -> Deliverer:
    rules = DestinationSettings(webhook_allow_hosts=allow, webhook_allow_http=True).destinations
    return Deliverer(rules, timeout=timeout, max_response_bytes=65536, max_connections=4)


async def test_a_signed_post_reaches_an_allowed_receiver(server: _Server) -> None:
    port = server.server_address[1]
    endpoint, job = _endpoint(f"http://127.0.0.1:{port}/hooks"), _job()
    deliverer = _deliverer()
    attempt = await deliverer.deliver(endpoint, job)
    await deliverer.aclose()
    assert (attempt.outcome, attempt.status_code) == ("ok", 204)
    [request] = server.requests
    headers = {k.lower(): v for k, v in request["headers"].items()}
    assert headers["host"] == f"127.0.0.1:{port}"
    assert headers["webhook-id"] == job.webhook_id
    assert Webhook(endpoint.secret).verify(request["body"], headers)["data"]["message_id"] == "m-1"


async def test_loopback_is_refused_at_connect_time_without_the_allow_list(
    server: _Server,
) -> None:
    port = server.server_address[1]
    deliverer = _deliverer(allow="")
    # `localhost` resolves to loopback; an allow-listed *name* that is not it does not help.
    for url in (f"http://127.0.0.1:{port}/", f"http://localhost:{port}/"):
        attempt = await deliverer.deliver(_endpoint(url), _job())
        assert (attempt.outcome, attempt.status_code) == ("blocked", None), url
    await deliverer.aclose()
    assert server.requests == []


async def test_a_name_resolving_to_loopback_is_refused_when_it_is_connected(
    server: _Server,
) -> None:
    """The URL check passes (an ordinary name); only the connect-time check sees that it
    resolves to loopback (DNS rebinding looks the same)."""
    port = server.server_address[1]
    rules = DestinationSettings(webhook_allow_http=True).destinations
    deliverer = Deliverer(rules, timeout=5, max_response_bytes=1024, max_connections=2)
    name = socket.gethostname()
    resolved = {str(info[4][0]) for info in socket.getaddrinfo(name, port, type=socket.SOCK_STREAM)}
    if not any(address.startswith("127.") for address in resolved):
        pytest.skip(f"{name} does not resolve to loopback here")
    attempt = await deliverer.deliver(_endpoint(f"http://{name}:{port}/"), _job())
    await deliverer.aclose()
    assert attempt.outcome == "blocked"
    assert server.requests == []


async def test_redirects_are_not_followed(server: _Server) -> None:
    port = server.server_address[1]
    deliverer = _deliverer()
    attempt = await deliverer.deliver(_endpoint(f"http://127.0.0.1:{port}/redirect"), _job())
    await deliverer.aclose()
    assert (attempt.outcome, attempt.status_code) == ("http_error", 307)
    assert [r["path"] for r in server.requests] == ["/redirect"]


async def test_a_huge_answer_is_read_only_up_to_the_bound(server: _Server) -> None:
    port = server.server_address[1]
    deliverer = _deliverer()
    started = time.monotonic()
    attempt = await deliverer.deliver(_endpoint(f"http://127.0.0.1:{port}/huge"), _job())
    await deliverer.aclose()
    assert (attempt.outcome, attempt.status_code) == ("ok", 200)
    assert time.monotonic() - started < 5
    time.sleep(0.5)
    # The server could write only what the socket buffers took before the hang-up.
    assert server.huge_bytes_sent < 20 * 1024 * 1024


async def test_an_attempt_is_bounded_in_time(server: _Server) -> None:
    port = server.server_address[1]
    deliverer = _deliverer(timeout=0.5)
    started = time.monotonic()
    attempt = await deliverer.deliver(_endpoint(f"http://127.0.0.1:{port}/slow"), _job())
    await deliverer.aclose()
    assert attempt.outcome == "timeout"
    assert time.monotonic() - started < 2


async def test_a_refused_connection_is_a_connect_error() -> None:
    with socket.socket() as probe:
        probe.bind(("127.0.0.1", 0))
        port = probe.getsockname()[1]  # nothing listens once it is closed
    deliverer = _deliverer()
    attempt = await deliverer.deliver(_endpoint(f"http://127.0.0.1:{port}/"), _job())
    await deliverer.aclose()
    assert (attempt.outcome, attempt.status_code) == ("connect_error", None)


async def test_the_backend_checks_every_resolved_address_when_it_connects(
    server: _Server,
) -> None:
    """Below the URL rules: `localhost` resolves to loopback and is refused on connect,
    unless the allow-list names its address."""
    from limbo_shared.webhooks import Refused
    from limbo_webhooks.transport import GuardedBackend

    port = server.server_address[1]
    strict = GuardedBackend(DestinationSettings().destinations)
    with pytest.raises(Refused, match="non-public"):
        await strict.connect_tcp("localhost", port, timeout=5)
    allowed = GuardedBackend(DestinationSettings(webhook_allow_hosts="127.0.0.1,::1").destinations)
    stream = await allowed.connect_tcp("localhost", port, timeout=5)
    await stream.aclose()
