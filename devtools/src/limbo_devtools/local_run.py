"""``limbo-local``: the whole system on this machine, no cloud account needed.

Starts an AWS emulator (moto server) with the transactional and the bulk FIFO queue,
their dead-letter queue, a verified SES identity and the DynamoDB status table; a
Mailgun-compatible sink; the API (with one demo API key, printed at start); the SES and
Mailgun workers. Both workers consume both queues (transactional first), so each
message is sent by whichever is free (and a message one provider fails on may be sent
by the other on retry).
"""

from __future__ import annotations

import argparse
import os
import signal
import sys
import tempfile
import time
from pathlib import Path

from limbo_api.auth import hash_key, mint_key

from .local_aws import provision
from .processes import Process, script

BANNER = """
limbo is running.

  API              http://127.0.0.1:{api}   (OpenAPI: /openapi.json, metrics: /metrics)
  Mailgun sink     http://127.0.0.1:{sink}/messages   (what the Mailgun worker delivered)
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
below. Ctrl-C stops everything.
"""


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__)
    parser.add_argument("--api-port", type=int, default=int(os.environ.get("PORT", "8080")))
    parser.add_argument("--moto-port", type=int, default=5000)
    parser.add_argument("--sink-port", type=int, default=8025)
    parser.add_argument("--logs", type=Path, default=None, help="folder for process logs")
    parser.add_argument("--no-ses", action="store_true", help="run only the Mailgun worker")
    args = parser.parse_args()

    logs = args.logs or Path(tempfile.mkdtemp(prefix="limbo-local-"))
    logs.mkdir(parents=True, exist_ok=True)
    endpoint = f"http://127.0.0.1:{args.moto_port}"
    base_env = {
        "AWS_ACCESS_KEY_ID": "testing",
        "AWS_SECRET_ACCESS_KEY": "testing",
        "LOG_FORMAT": os.environ.get("LOG_FORMAT", "console"),
    }
    processes: list[Process] = []

    def stop_all(*_: object) -> None:
        for process in reversed(processes):
            process.stop(timeout=30)
        sys.exit(0)

    signal.signal(signal.SIGTERM, stop_all)
    try:
        moto = Process(
            "moto",
            [script("limbo-moto"), "-H", "127.0.0.1", "-p", str(args.moto_port)],
            env=base_env,
            health_url=f"{endpoint}/moto-api/",
            log_path=logs / "moto.log",
        )
        processes.append(moto.start())
        sink = Process(
            "sink",
            [script("limbo-mailgun-sink")],
            env={"SINK_PORT": str(args.sink_port), "SINK_API_KEY": "local-mailgun-key"},
            health_url=f"http://127.0.0.1:{args.sink_port}/health",
            log_path=logs / "sink.log",
        )
        processes.append(sink.start())
        os.environ.update(base_env)
        aws = provision(endpoint, visibility_timeout=30, status_table="limbo-status")
        env = {**base_env, **aws.environment()}
        demo_key = mint_key()
        api = Process(
            "api",
            [script("limbo-api")],
            env={
                **env,
                "PORT": str(args.api_port),
                "AUTH": "enabled",
                "API_KEYS": f"demo={hash_key(demo_key)}",
            },
            health_url=f"http://127.0.0.1:{args.api_port}/health",
        )
        processes.append(api.start())
        mailgun = Process(
            "mailgun-worker",
            [script("limbo-mailgun-worker")],
            env={
                **env,
                "PORT": "9092",
                "MAILGUN": "local-mailgun-key",
                "DOMAIN": "example.com",
                "MAILGUN_API_URL": f"http://127.0.0.1:{args.sink_port}",
            },
            health_url="http://127.0.0.1:9092/health",
        )
        processes.append(mailgun.start())
        if not args.no_ses:
            ses = Process(
                "ses-worker",
                [script("limbo-ses-worker")],
                env={**env, "PORT": "9091"},
                health_url="http://127.0.0.1:9091/health",
            )
            processes.append(ses.start())
        print(
            BANNER.format(
                api=args.api_port, sink=args.sink_port, moto=args.moto_port, logs=logs, key=demo_key
            ),
            flush=True,
        )
        while all(p.popen is not None and p.popen.poll() is None for p in processes):
            time.sleep(0.5)
        dead = [p.name for p in processes if p.popen is not None and p.popen.poll() is not None]
        print(f"limbo-local: {', '.join(dead)} exited; stopping the rest", file=sys.stderr)
        stop_all()
    except KeyboardInterrupt:
        stop_all()
    except Exception:
        for process in reversed(processes):
            process.stop(timeout=10)
        raise


if __name__ == "__main__":
    main()
