"""SES v2's account calls, which moto does not implement, in front of moto's SES.

``GetAccount`` answers the emulator's quota (``MAX_SEND_RATE``) and whether sending is
enabled; ``PutAccountSendingAttributes`` turns sending off and on, and while it is off
``SendEmail`` is refused with ``SendingPausedException``, as SES refuses an account an
operator (or AWS) paused. So a test breaks and restores the SES account through the same
API an operator uses, and the SES worker's probe (``GetAccount``) sees the account
recover. The state is per region, like SES's own.
"""

from __future__ import annotations

import json
import re
import threading
from collections.abc import Callable, Iterable
from typing import Any

__all__ = ["MAX_SEND_RATE", "SesAccount"]

WsgiApp = Callable[[dict[str, Any], Callable[..., Any]], Iterable[bytes]]

# A production account's usual first quota (the sandbox's 1/s would slow every test).
MAX_SEND_RATE = 14.0
MAX_24_HOUR_SEND = 50_000.0

_ACCOUNT = "/v2/email/account"
_SENDING = "/v2/email/account/sending"
_SEND = "/v2/email/outbound-emails"
# SigV4: Credential=<key>/<date>/<region>/<service>/aws4_request
_REGION = re.compile(r"Credential=[^/]+/\d{8}/([a-z0-9-]+)/")


class SesAccount:
    def __init__(self, app: WsgiApp) -> None:
        self.app = app
        self._lock = threading.Lock()
        self._disabled: set[str] = set()

    def __call__(self, environ: dict[str, Any], start_response: Callable[..., Any]) -> Any:
        path, method = environ.get("PATH_INFO", ""), environ.get("REQUEST_METHOD", "")
        if not path.startswith("/v2/email/"):
            return self.app(environ, start_response)
        region = _region(environ)
        if path == _ACCOUNT and method == "GET":
            with self._lock:
                enabled = region not in self._disabled
            return _json(start_response, 200, _account(enabled))
        if path == _SENDING and method == "PUT":
            body = _body(environ)
            with self._lock:
                if body.get("SendingEnabled", True) is False:
                    self._disabled.add(region)
                else:
                    self._disabled.discard(region)
            return _json(start_response, 200, {})
        if path == _SEND and method == "POST":
            with self._lock:
                paused = region in self._disabled
            if paused:
                return _json(
                    start_response,
                    400,
                    {"message": "Sending is paused for this account."},
                    error="SendingPausedException",
                )
        return self.app(environ, start_response)


def _account(enabled: bool) -> dict[str, Any]:
    return {
        "SendingEnabled": enabled,
        "ProductionAccessEnabled": True,
        "EnforcementStatus": "HEALTHY",
        "DedicatedIpAutoWarmupEnabled": False,
        "SendQuota": {
            "Max24HourSend": MAX_24_HOUR_SEND,
            "MaxSendRate": MAX_SEND_RATE,
            "SentLast24Hours": 0.0,
        },
    }


def _region(environ: dict[str, Any]) -> str:
    found = _REGION.search(environ.get("HTTP_AUTHORIZATION", ""))
    return found.group(1) if found else "us-east-1"


def _body(environ: dict[str, Any]) -> dict[str, Any]:
    length = int(environ.get("CONTENT_LENGTH") or 0)
    raw = environ["wsgi.input"].read(length) if length else b""
    try:
        body = json.loads(raw or b"{}")
    except ValueError:
        return {}
    return body if isinstance(body, dict) else {}


def _json(
    start_response: Callable[..., Any], status: int, body: dict[str, Any], *, error: str = ""
) -> list[bytes]:
    payload = json.dumps(body).encode()
    headers = [("Content-Type", "application/json"), ("Content-Length", str(len(payload)))]
    if error:
        # botocore's rest-json parser takes the code from this header.
        headers.append(("x-amzn-ErrorType", error))
    reason = {200: "OK", 400: "Bad Request"}[status]
    start_response(f"{status} {reason}", headers)
    return [payload]
