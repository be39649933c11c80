"""``limbo-local``: the whole system on this machine, no cloud account needed.

Starts, through the one launcher (launcher.py), the AWS emulator (limbo-moto) with the
transactional and the bulk FIFO queue, their dead-letter queue, a verified SES identity,
the DynamoDB status table, the schedule queue, the S3 bucket for large payloads and the
delivery-event path (SNS topic, events queue, configuration set); a Mailgun-compatible
sink that posts signed webhooks back; the API (with one demo API key, printed at start);
the scheduler; the SES and Mailgun workers; limbo-events; the webhook worker on its
queue, and a webhook receiver playing an application that registered an endpoint.
Both workers consume both queues (transactional first), so each message is sent by
whichever is free (and a message one provider fails on may be sent by the other on
retry).
"""

from __future__ import annotations

import argparse
import os
import secrets
import signal
import sys
import tempfile
import time
from pathlib import Path

from limbo_api.auth import hash_key, mint_key

from .launcher import Launcher
from .mailgun_sink import SinkConfig
from .ses_events import SIMULATOR_DOMAIN

BANNER = """
limbo is running.

  API              http://127.0.0.1:{api}   (OpenAPI: /openapi.json, metrics: /metrics)
  Mailgun sink     http://127.0.0.1:{sink}/messages   (what the Mailgun worker delivered)
  Webhook receiver http://127.0.0.1:{receiver}/received   (webhooks limbo delivered)
  SES (emulated)   http://127.0.0.1:{moto}/moto-api/data.json   (look under "ses")
  AWS emulator     http://127.0.0.1:{moto}
  logs             {logs}

Demo API key (owner "demo"; minted for this run, gone when it stops):

  export LIMBO_KEY={key}

Send an email, then ask for its status with the id it answers:

  curl -s http://127.0.0.1:{api}/v1/mail -H "Authorization: Bearer $LIMBO_KEY" \\
    -H 'Content-Type: application/json' -H 'Idempotency-Key: hello-1' \\
    -d '{{"from": "limbo@example.com", "to": ["you@example.com"],
         "subject": "Hello", "message": "Hi from limbo"}}'
  curl -s http://127.0.0.1:{api}/v1/mail/<id> -H "Authorization: Bearer $LIMBO_KEY"

Each delivery is logged as an event "sent" by limbo-ses-worker or limbo-mailgun-worker
below. Delivery events come back for the test addresses: SES's mailbox simulator
(success@, bounce@, complaint@simulator.amazonses.com) and the sink's
(success@, bounce@, tempfail@, complaint@, unsubscribe@{mailgun_events}). Send to a
bounce address, and watch the status become "bounced" and the address appear here:

  curl -s http://127.0.0.1:{api}/v1/suppressions -H "Authorization: Bearer $LIMBO_KEY"

To have status webhooks pushed to the receiver, register it (the answer holds
the signing secret, shown once; give it to the receiver so it verifies signatures):

  curl -s http://127.0.0.1:{api}/v1/webhooks -H "Authorization: Bearer $LIMBO_KEY" \
    -H 'Content-Type: application/json' \
    -d '{{"url": "http://127.0.0.1:{receiver}/hooks", "events": ["sent", "failed"]}}'
  curl -s -X PUT http://127.0.0.1:{receiver}/secret -d 'whsec_...'

Ctrl-C stops everything.
"""

MAILGUN_EVENTS_DOMAIN = "mailgun-simulator.example.com"


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__)
    parser.add_argument("--api-port", type=int, default=int(os.environ.get("PORT", "8080")))
    parser.add_argument("--moto-port", type=int, default=5000)
    parser.add_argument("--sink-port", type=int, default=8025)
    parser.add_argument("--receiver-port", type=int, default=8026)
    parser.add_argument("--logs", type=Path, default=None, help="folder for process logs")
    parser.add_argument("--no-ses", action="store_true", help="run only the Mailgun worker")
    args = parser.parse_args()

    logs = args.logs or Path(tempfile.mkdtemp(prefix="limbo-local-"))
    log_format = os.environ.get("LOG_FORMAT", "console")
    launcher = Launcher(
        logs,
        # The receiver runs on loopback, which webhooks may not reach unless allowed.
        env={
            "LOG_FORMAT": log_format,
            "WEBHOOK_ALLOW_HOSTS": "127.0.0.1",
            "WEBHOOK_ALLOW_HTTP": "true",
        },
        mailgun_key="local-mailgun-key",
        mailgun_domain="example.com",
    )

    def stop_all(*_: object) -> None:
        launcher.stop(timeout=30)
        sys.exit(0)

    signal.signal(signal.SIGTERM, stop_all)
    try:
        launcher.logs.mkdir(parents=True, exist_ok=True)
        # The sink's test addresses get SES's simulated events too, whichever sends.
        launcher.emulator(
            port=args.moto_port, extra={"SES_SIMULATOR_DOMAINS": MAILGUN_EVENTS_DOMAIN}
        )
        # Minted per run: the sink signs with it, the API verifies with it.
        webhook_key = secrets.token_hex(16)
        sink = SinkConfig(
            webhook_url=f"http://127.0.0.1:{args.api_port}/v1/events/mailgun",
            webhook_signing_key=webhook_key,
            # Both workers take from the one queue: whichever sends to SES's simulator
            # addresses, the same events come back.
            events_domains=frozenset({MAILGUN_EVENTS_DOMAIN, SIMULATOR_DOMAIN}),
        )
        launcher.sink(sink, port=args.sink_port)
        launcher.start("webhook-receiver", port=args.receiver_port, console=True)
        aws = launcher.provision(visibility_timeout=30, status_table="limbo-status", events=True)
        # The demo sends from the verified sender's domain (the README's examples do).
        launcher.env["SENDER_DOMAINS"] = aws.sender.rpartition("@")[2]
        demo_key = mint_key()
        keys = {
            "AUTH": "enabled",
            "API_KEYS": f"demo={hash_key(demo_key)}",
            "MAILGUN_WEBHOOK_SIGNING_KEY": webhook_key,
        }
        # limbo's own processes log to this terminal; the emulators to files.
        launcher.start("api", port=args.api_port, console=True, extra=keys)
        launcher.start("scheduler", port=9093, console=True)
        launcher.start("mailgun-worker", port=9092, console=True)
        if not args.no_ses:
            launcher.start("ses-worker", port=9091, console=True)
        launcher.start("webhooks", port=9094, console=True)
        launcher.start("events", port=9095, console=True)
        print(
            BANNER.format(
                api=args.api_port,
                sink=args.sink_port,
                receiver=args.receiver_port,
                moto=args.moto_port,
                logs=logs,
                key=demo_key,
                mailgun_events=MAILGUN_EVENTS_DOMAIN,
            ),
            flush=True,
        )
        processes = launcher.processes
        while all(p.popen is not None and p.popen.poll() is None for p in processes):
            time.sleep(0.5)
        dead = [p.name for p in processes if p.popen is not None and p.popen.poll() is not None]
        print(f"limbo-local: {', '.join(dead)} exited; stopping the rest", file=sys.stderr)
        stop_all()
    except KeyboardInterrupt:
        stop_all()
    except Exception:
        launcher.stop(timeout=10)
        raise


if __name__ == "__main__":
    main()
