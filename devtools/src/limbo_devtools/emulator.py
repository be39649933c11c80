"""``limbo-moto``: moto's server, with DynamoDB calls handled one at a time.

moto's server is threaded and its DynamoDB backend takes no lock, so two concurrent
conditional writes to one item can both succeed, which real DynamoDB never allows
(single-item writes are atomic there). limbo's claims and idempotency keys rely on that
atomicity, so the emulator serialises DynamoDB requests, and each queue's ReceiveMessage
scans (sqs_receive.py: moto could hand one message to two receivers). It also publishes SES's
delivery events for the mailbox-simulator addresses (ses_events.py) and answers SES v2's
account calls (ses_account.py), which moto does not; every other service is served
exactly as by ``moto_server``.
"""

from __future__ import annotations

import argparse
import os
import threading
import time
from collections.abc import Callable, Iterable
from typing import Any

from moto.moto_server.werkzeug_app import (
    DomainDispatcherApplication,
    MotoRequestHandler,
    create_backend_app,
)
from werkzeug.serving import run_simple

from .ses_account import SesAccount
from .ses_events import SesEventPublisher
from .sqs_receive import serialise_receives

__all__ = ["DataJsonRetried", "OneDynamoDbCallAtATime", "main"]

WsgiApp = Callable[[dict[str, Any], Callable[..., Any]], Iterable[bytes]]


class OneDynamoDbCallAtATime:
    def __init__(self, app: WsgiApp) -> None:
        self.app = app
        self.lock = threading.Lock()

    def __call__(self, environ: dict[str, Any], start_response: Callable[..., Any]) -> Any:
        # boto3 names DynamoDB actions `DynamoDB_20120810.<Action>` in X-Amz-Target.
        if not environ.get("HTTP_X_AMZ_TARGET", "").startswith("DynamoDB_"):
            return self.app(environ, start_response)
        with self.lock:
            return list(self.app(environ, start_response))  # the whole body, under the lock


class DataJsonRetried:
    """``/moto-api/data.json`` (every backend's state, what tests read SES's sent mail
    from) asked again when it fails: moto walks its backends' dicts unlocked, and a
    request changing one meanwhile makes it answer 500 (seen under load)."""

    ATTEMPTS = 5

    def __init__(self, app: WsgiApp) -> None:
        self.app = app

    def __call__(self, environ: dict[str, Any], start_response: Callable[..., Any]) -> Any:
        if environ.get("PATH_INFO") != "/moto-api/data.json":
            return self.app(environ, start_response)
        for _ in range(self.ATTEMPTS - 1):
            answer, body = self._attempt(environ)
            if answer and not str(answer[0]).startswith("5"):
                start_response(*answer)
                return body
            time.sleep(0.05)
        return self.app(environ, start_response)

    def _attempt(self, environ: dict[str, Any]) -> tuple[list[Any], list[bytes]]:
        answer: list[Any] = []

        def start_response(*args: Any) -> None:
            answer.extend(args)

        return answer, list(self.app(environ, start_response))


def main(argv: list[str] | None = None) -> None:
    parser = argparse.ArgumentParser(prog="limbo-moto", description=__doc__)
    parser.add_argument("-H", "--host", default="127.0.0.1")
    parser.add_argument("-p", "--port", type=int, default=5000)
    args = parser.parse_args(argv)
    # As moto_server does: some backends build URLs (SQS queue URLs...) from it.
    os.environ.setdefault("MOTO_PORT", str(args.port))
    serialise_receives()
    # A paused account's SendEmail is refused before it reaches moto or the publisher.
    app = DataJsonRetried(
        SesAccount(
            OneDynamoDbCallAtATime(
                SesEventPublisher(DomainDispatcherApplication(create_backend_app))
            )
        )
    )
    run_simple(args.host, args.port, app, threaded=True, request_handler=MotoRequestHandler)


if __name__ == "__main__":
    main()
