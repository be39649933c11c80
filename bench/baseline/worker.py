"""Baseline worker: receive one message, send it, delete it, repeat (not limbo)."""

from __future__ import annotations

import os
import signal
import sys
import threading
from http.server import BaseHTTPRequestHandler, HTTPServer
from urllib.parse import urlencode

import boto3
import httpx

from limbo_shared.schema import QueuedMail

QUEUE = os.environ["QUEUE"]
WAIT = int(os.environ.get("WAIT_TIME_SECONDS", "20"))


class _Health(BaseHTTPRequestHandler):
    def do_GET(self) -> None:
        self.send_response(200)
        self.end_headers()
        self.wfile.write(b'{"health": "ok"}')

    def log_message(self, *args: object) -> None:
        pass


def main() -> None:
    sqs = boto3.session.Session().client(
        "sqs", region_name=os.environ["REGION"], endpoint_url=os.environ.get("AWS_ENDPOINT_URL")
    )
    mailgun = httpx.Client(
        base_url=os.environ["MAILGUN_API_URL"], auth=("api", os.environ["MAILGUN"]), timeout=10
    )
    path = f"/v3/{os.environ['DOMAIN']}/messages"
    server = HTTPServer(("127.0.0.1", int(os.environ.get("PORT", "9095"))), _Health)
    threading.Thread(target=server.serve_forever, daemon=True).start()
    # A baseline keeps no drain logic: SIGTERM ends it, even mid long poll.
    signal.signal(signal.SIGTERM, lambda *_: sys.exit(0))
    while True:
        response = sqs.receive_message(QueueUrl=QUEUE, MaxNumberOfMessages=1, WaitTimeSeconds=WAIT)
        for message in response.get("Messages", []):
            mail = QueuedMail.from_json(message["Body"])
            request = mail.mail
            fields = [
                ("from", request.from_),
                *[("to", a) for a in request.to],
                ("subject", request.subject),
                ("text", request.message),
                ("h:X-Limbo-Message-Id", mail.id),
            ]
            sent = mailgun.post(
                path,
                content=urlencode(fields).encode(),
                headers={"Content-Type": "application/x-www-form-urlencoded"},
            )
            if sent.status_code == 200:
                sqs.delete_message(QueueUrl=QUEUE, ReceiptHandle=message["ReceiptHandle"])


if __name__ == "__main__":
    main()
