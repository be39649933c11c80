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

__all__ = ["OneDynamoDbCallAtATime", "main"]

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


def main(argv: list[str] | None = None) -> None:
    parser = argparse.ArgumentParser(prog="limbo-moto", description=__doc__)
    parser.add_argument("-H", "--host", default="127.0.0.1")
    parser.add_argument("-p", "--port", type=int, default=5000)
    args = parser.parse_args(argv)
    # As moto_server does: some backends build URLs (SQS queue URLs...) from it.
    os.environ.setdefault("MOTO_PORT", str(args.port))
    serialise_receives()
    # A paused account's SendEmail is refused before it reaches moto or the publisher.
    app = SesAccount(
        OneDynamoDbCallAtATime(SesEventPublisher(DomainDispatcherApplication(create_backend_app)))
    )
    run_simple(args.host, args.port, app, threaded=True, request_handler=MotoRequestHandler)


if __name__ == "__main__":
    main()
