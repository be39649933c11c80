"""An HTTP proxy in front of moto that can hold back chosen AWS actions.

boto3 names the action of every SQS and DynamoDB call in the ``X-Amz-Target`` header
(``AmazonSQS.DeleteMessageBatch``, ``DynamoDB_20120810.PutItem``...). A held call waits
in the proxy until it is released, so a test can stop a real process at an exact point
of its work (after the provider accepted, before the delete) without any hook in the
code under test. It also counts every action it forwards (``seen``) and can keep the
bodies of chosen requests (``record``), to check what reached a service byte for byte.
"""

from __future__ import annotations

import hashlib
import http.client
import threading
from collections import Counter
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from urllib.parse import urlsplit

__all__ = ["HoldingProxy"]

_HOP_BY_HOP = {"connection", "keep-alive", "transfer-encoding", "content-length"}


class HoldingProxy:
    def __init__(self, upstream: str) -> None:
        parts = urlsplit(upstream)
        self._upstream = (parts.hostname or "127.0.0.1", parts.port or 80)
        self._lock = threading.Condition()
        self._held: set[str] = set()
        self._waiting: Counter[str] = Counter()
        self._seen: Counter[str] = Counter()
        # A client's retry (botocore's, after a read timeout) resends the same body.
        self._bodies: dict[str, set[bytes]] = {}
        # Request bodies kept by path prefix (REST APIs such as SESv2 name no target).
        self._recording: dict[str, list[bytes]] = {}
        self._closing = False
        self._server = ThreadingHTTPServer(("127.0.0.1", 0), self._handler())
        self._server.daemon_threads = True
        self._thread = threading.Thread(target=self._server.serve_forever, daemon=True)
        self._thread.start()

    @property
    def url(self) -> str:
        return f"http://127.0.0.1:{self._server.server_address[1]}"

    def hold(self, action: str) -> None:
        with self._lock:
            self._held.add(action)

    def release(self, action: str) -> None:
        """Let waiting and future calls of ``action`` through."""
        with self._lock:
            self._held.discard(action)
            self._lock.notify_all()

    def waiting(self, action: str) -> int:
        with self._lock:
            return self._waiting[action]

    def seen(self, action: str) -> int:
        with self._lock:
            return self._seen[action]

    def distinct(self, action: str) -> int:
        """Calls of ``action`` with different bodies: what ``seen`` counts, less retries."""
        with self._lock:
            return len(self._bodies.get(action, ()))

    def record(self, path_prefix: str) -> None:
        """Keep the bodies of requests whose path starts with ``path_prefix``."""
        with self._lock:
            self._recording.setdefault(path_prefix, [])

    def recorded(self, path_prefix: str) -> list[bytes]:
        with self._lock:
            return list(self._recording[path_prefix])

    def _keep(self, path: str, body: bytes) -> None:
        with self._lock:
            for prefix, bodies in self._recording.items():
                if path.startswith(prefix):
                    bodies.append(body)

    def close(self) -> None:
        """Stop; held calls are answered 503 and never reach the emulator."""
        with self._lock:
            self._closing = True
            self._lock.notify_all()
        self._server.shutdown()
        self._server.server_close()

    def _wait_turn(self, action: str, body: bytes) -> bool:
        with self._lock:
            self._seen[action] += 1
            self._bodies.setdefault(action, set()).add(hashlib.sha256(body).digest())
            if action not in self._held:
                return True
            self._waiting[action] += 1
            self._lock.wait_for(lambda: action not in self._held or self._closing)
            self._waiting[action] -= 1
            return not self._closing

    def _handler(self) -> type[BaseHTTPRequestHandler]:
        proxy = self

        class Handler(BaseHTTPRequestHandler):
            protocol_version = "HTTP/1.1"

            def log_message(self, format: str, *args: object) -> None:
                pass

            def _forward(self) -> None:
                length = int(self.headers.get("Content-Length") or 0)
                body = self.rfile.read(length) if length else b""
                action = self.headers.get("X-Amz-Target", "")
                proxy._keep(self.path, body)
                if not proxy._wait_turn(action, body):
                    self.send_response(503)
                    self.send_header("Content-Length", "0")
                    self.end_headers()
                    return
                upstream = http.client.HTTPConnection(*proxy._upstream, timeout=60)
                headers = {k: v for k, v in self.headers.items() if k.lower() not in _HOP_BY_HOP}
                upstream.request(self.command, self.path, body=body, headers=headers)
                response = upstream.getresponse()
                payload = response.read()
                upstream.close()
                self.send_response(response.status)
                for key, value in response.getheaders():
                    if key.lower() not in _HOP_BY_HOP:
                        self.send_header(key, value)
                self.send_header("Content-Length", str(len(payload)))
                self.end_headers()
                self.wfile.write(payload)

            do_GET = do_POST = do_PUT = do_DELETE = do_HEAD = _forward

        return Handler
