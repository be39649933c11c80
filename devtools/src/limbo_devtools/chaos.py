"""Fault-injection run: real processes, a flaky provider, workers killed at random.

``limbo-chaos`` starts an SQS emulator (or uses ``--endpoint``), a Mailgun sink that
injects failures (HTTP 500, 429 with Retry-After, answers slower than SEND_TIMEOUT,
permanent 400s), the API and several Mailgun workers on one queue. While emails are
submitted through the API, one worker at a time is killed with SIGKILL and restarted.
At the end every accepted email must be delivered, or, for the injected permanent
rejections only, be in the dead-letter queue with its reason. Nothing may be lost.

Duplicates are counted, not forbidden, while tracking is off: SQS is at-least-once
and Mailgun has no idempotency key, so a worker killed between the provider's answer
and the delete, or a provider that accepts after the client timed out, sends twice.
They are bounded by the kills (each kill can repeat at most the sends it had in flight)
plus the injected slow answers. With STATUS_TABLE in the environment (the tracking
store) the run demands zero duplicates.

The same code runs the CI-sized test (tests/reliability/test_faults.py) and the
command; the command prints the figures and exits 1 when an invariant is broken.
"""

from __future__ import annotations

import argparse
import base64
import contextlib
import inspect
import json
import os
import random
import signal
import sys
import threading
import time
import uuid
from collections import Counter
from concurrent.futures import ThreadPoolExecutor
from dataclasses import asdict, dataclass, field
from pathlib import Path
from typing import TYPE_CHECKING, Any

import boto3
import httpx

from .local_aws import LocalAws, provision
from .processes import Process, free_port, script

if TYPE_CHECKING:
    from types_boto3_sqs import SQSClient
    from types_boto3_sqs.type_defs import MessageTypeDef

__all__ = ["ChaosConfig", "ChaosReport", "ChaosRun", "main", "run_chaos"]

MAILGUN_KEY_PREFIX = "key-chaos-"
# A permanent rejection the sink injected; any other dead-letter reason is a failure.
INJECTED_400 = "mailgun answered 400: injected permanent rejection"


@dataclass
class ChaosConfig:
    emails: int = 10_000
    workers: int = 3
    # Seconds between two kills, drawn uniformly from this range.
    kill_every: tuple[float, float] = (2.0, 5.0)
    fail_500: float = 0.05
    fail_429: float = 0.02
    fail_slow: float = 0.01
    fail_400: float = 0.005
    # The client timeout; the injected slow answers take SEND_TIMEOUT + 2 s.
    send_timeout: float = 2.0
    # Short, so the messages a killed worker held come back within the run.
    visibility_timeout: int = 10
    concurrency: int = 32
    # Parallel HTTP clients submitting through the API.
    clients: int = 16
    # Submission pauses while the queue holds more than this: moto's send and receive
    # walk the whole queue (several times per message), so a bounded backlog keeps the
    # emulator's cost per message flat. This is how 10,000 emails run "in chunks".
    backlog: int = 200
    # After the last submission, how long the queue may take to drain.
    settle_timeout: float = 300.0
    seed: int | None = None
    # An SQS emulator already running (moto server, LocalStack); None starts moto.
    endpoint: str | None = None
    # Extra environment for the API and the workers (e.g. STATUS_TABLE=... for tracking).
    env: dict[str, str] = field(default_factory=dict)
    logs: Path | None = None
    progress: bool = False

    @property
    def tracking(self) -> bool:
        return bool(self.env.get("STATUS_TABLE"))


@dataclass
class ChaosReport:
    emails: int
    accepted: int
    refused: int
    delivered: int
    deliveries: int
    dead_lettered: int
    duplicated: int
    lost: int
    kills: int
    injected: dict[str, int]
    duplicate_bound: int
    # Duplicates explained by an injected slow answer the client had given up on.
    slow_duplicates: int
    delivered_and_dead_lettered: int
    unaccepted_deliveries: int
    unexpected_dead_letters: list[str]
    left_on_queue: int
    failed_restarts: int
    tracking: bool
    seconds: float
    lost_ids: list[str] = field(default_factory=list)

    def problems(self) -> list[str]:
        """Broken invariants; empty when the run proves what it should."""
        found = []
        if self.lost:
            found.append(f"{self.lost} accepted emails were lost: {self.lost_ids[:5]}")
        if self.unexpected_dead_letters:
            found.append(
                f"{len(self.unexpected_dead_letters)} dead letters were not injected "
                f"400s: {self.unexpected_dead_letters[:3]}"
            )
        if self.dead_lettered > self.injected.get("400", 0):
            found.append(
                f"{self.dead_lettered} dead letters for {self.injected.get('400', 0)} injected 400s"
            )
        if self.failed_restarts:
            found.append(f"{self.failed_restarts} worker restarts failed")
        if self.left_on_queue:
            found.append(f"{self.left_on_queue} messages still on the queue")
        if self.tracking and (self.duplicated or self.delivered_and_dead_lettered):
            found.append(f"tracking is on but {self.duplicated} duplicates were delivered")
        if not self.tracking and self.duplicated > self.duplicate_bound:
            found.append(f"{self.duplicated} duplicates exceed the bound {self.duplicate_bound}")
        if self.unaccepted_deliveries:
            found.append(
                f"{self.unaccepted_deliveries} emails were delivered although the "
                "API had refused them (a client retry would send them twice)"
            )
        if self.refused > self.emails // 100:
            found.append(f"the API refused {self.refused} of {self.emails} emails")
        return found

    def render(self) -> str:
        injected = ", ".join(f"{k}: {v}" for k, v in sorted(self.injected.items())) or "none"
        rows = [
            ("emails submitted", self.emails),
            ("accepted (200)", self.accepted),
            ("refused by the API", self.refused),
            ("delivered", self.delivered),
            ("dead-lettered (injected 400)", self.dead_lettered),
            (
                "duplicated",
                f"{self.duplicated} (bound {self.duplicate_bound}; "
                f"{self.slow_duplicates} after an injected slow answer)",
            ),
            ("delivered and dead-lettered", self.delivered_and_dead_lettered),
            ("lost", self.lost),
            ("workers killed (SIGKILL)", self.kills),
            ("provider failures injected", injected),
            ("tracking (STATUS_TABLE)", "on" if self.tracking else "off"),
            ("seconds", f"{self.seconds:.1f} ({self.accepted / max(self.seconds, 1e-9):.0f}/s)"),
        ]
        width = max(len(name) for name, _ in rows)
        lines = [f"{name.ljust(width)}  {value}" for name, value in rows]
        problems = self.problems()
        lines.append("result".ljust(width) + "  " + ("OK" if not problems else "FAILED"))
        lines += [f"  - {problem}" for problem in problems]
        return "\n".join(lines)


class _Workers:
    """N worker processes; one killed with SIGKILL at random intervals and restarted.

    Restarts run on threads of their own, so the kill rhythm does not wait for a new
    process to import and answer its health check; only running workers are chosen.
    """

    def __init__(self, run: ChaosRun) -> None:
        self._run = run
        self._rng = random.Random(run.config.seed)
        self.slots: list[Process | None] = []
        self.everyone: list[Process] = []
        self.kills = 0
        self.failed_restarts: list[str] = []
        self._lock = threading.Lock()
        self._stop = threading.Event()
        self._restarts: list[threading.Thread] = []
        self._thread = threading.Thread(target=self._kill_loop, name="chaos-killer", daemon=True)

    def start(self) -> None:
        for _ in range(self._run.config.workers):
            process = self._run.start_worker()
            self.slots.append(process)
            self.everyone.append(process)
        self._thread.start()

    def _restart(self, index: int) -> None:
        try:
            process = self._run.start_worker()
        except Exception as error:  # reported; the other workers go on
            self.failed_restarts.append(str(error))
            self._run.say(f"restart of worker {index} failed: {error}")
            return
        with self._lock:
            self.everyone.append(process)
            if self._stop.is_set():
                process.stop(timeout=40)
                return
            self.slots[index] = process

    def _kill_loop(self) -> None:
        low, high = self._run.config.kill_every
        while not self._stop.wait(self._rng.uniform(low, high)):
            with self._lock:
                running = [i for i, p in enumerate(self.slots) if p is not None]
                if len(running) < 2:
                    continue  # never kill the last one standing: the run must progress
                index = self._rng.choice(running)
                victim = self.slots[index]
                assert victim is not None
                victim.kill()
                self.slots[index] = None
                self.kills += 1
            self._run.say(f"killed worker {index} (pid {victim.pid}), kill #{self.kills}")
            thread = threading.Thread(target=self._restart, args=(index,), daemon=True)
            thread.start()
            self._restarts.append(thread)

    def stop_killing(self) -> None:
        """No more kills; wait for pending restarts so every slot is running again."""
        self._stop.set()
        self._thread.join(timeout=60)
        for thread in self._restarts:
            thread.join(timeout=90)

    def stop(self) -> None:
        self.stop_killing()
        with self._lock:
            processes = list(self.everyone)
        for process in processes:
            process.stop(timeout=40)


class ChaosRun:
    """One fault-injection run; ``run()`` answers the report."""

    def __init__(self, config: ChaosConfig) -> None:
        self.config = config
        self.logs = config.logs or Path(f".chaos/{time.strftime('%Y%m%d-%H%M%S')}")
        self.logs.mkdir(parents=True, exist_ok=True)
        # Distinct secrets per run, so a scan of the logs can look for them.
        self.mailgun_key = MAILGUN_KEY_PREFIX + uuid.uuid4().hex
        self.aws_key_id = "AKIACHAOS" + uuid.uuid4().hex[:11].upper()
        self.aws_secret = uuid.uuid4().hex + uuid.uuid4().hex[:8]
        self._processes: list[Process] = []
        self._aws: LocalAws | None = None
        self._sink = ""
        self._api = ""
        self._sqs: SQSClient | None = None
        self.failed_restarts: list[str] = []

    # -- processes -------------------------------------------------------------------

    def say(self, text: str) -> None:
        if self.config.progress:
            print(f"[chaos {time.strftime('%H:%M:%S')}] {text}", flush=True)

    def _start(self, name: str, argv: list[str], env: dict[str, str], health: str) -> Process:
        process = Process(
            name,
            argv,
            env=env,
            health_url=health,
            log_path=self.logs / f"{name}-{health.split(':')[2].split('/')[0]}.log",
        )
        process.start(timeout=60)
        self._processes.append(process)
        return process

    def limbo_env(self, **extra: str) -> dict[str, str]:
        assert self._aws is not None
        return {
            **self._aws.environment(),
            "AWS_ACCESS_KEY_ID": self.aws_key_id,
            "AWS_SECRET_ACCESS_KEY": self.aws_secret,
            "LOG_FORMAT": "json",
            "WAIT_TIME_SECONDS": "2",
            # The run submits without keys; --env API_KEYS=... with a key can override.
            "AUTH": "disabled",
            **self.config.env,
            **extra,
        }

    def start_worker(self) -> Process:
        port = free_port()
        config = self.config
        return self._start(
            "limbo-mailgun-worker",
            [script("limbo-mailgun-worker")],
            self.limbo_env(
                PORT=str(port),
                MAILGUN=self.mailgun_key,
                DOMAIN="mg.example.com",
                MAILGUN_API_URL=self._sink,
                CONCURRENCY=str(config.concurrency),
                SEND_TIMEOUT=str(config.send_timeout),
                VISIBILITY_TIMEOUT=str(config.visibility_timeout),
                RETRY_BASE_SECONDS="1",
                RETRY_MAX_SECONDS="5",
                SHUTDOWN_GRACE="10",
            ),
            f"http://127.0.0.1:{port}/health",
        )

    def _start_sink(self) -> str:
        config = self.config
        port = free_port()
        env = {
            "SINK_PORT": str(port),
            "SINK_API_KEY": self.mailgun_key,
            "SINK_FAIL_500": str(config.fail_500),
            "SINK_FAIL_429": str(config.fail_429),
            "SINK_FAIL_SLOW": str(config.fail_slow),
            "SINK_SLOW_SECONDS": str(config.send_timeout + 2),
            "SINK_FAIL_400": str(config.fail_400),
        }
        if config.seed is not None:
            env["SINK_SEED"] = str(config.seed)
        self._start("sink", [script("limbo-mailgun-sink")], env, f"http://127.0.0.1:{port}/health")
        return f"http://127.0.0.1:{port}"

    def _start_moto(self) -> str:
        port = free_port()
        self._start(
            "moto",
            [script("moto_server"), "-H", "127.0.0.1", "-p", str(port)],
            {},
            f"http://127.0.0.1:{port}/moto-api/",
        )
        return f"http://127.0.0.1:{port}"

    # -- the run ---------------------------------------------------------------------

    def run(self) -> ChaosReport:
        config = self.config
        workers = _Workers(self)
        try:
            endpoint = config.endpoint or self._start_moto()
            extra: dict[str, Any] = {}
            if config.tracking and "status_table" in inspect.signature(provision).parameters:
                # The tracking store's table, where provision() knows how to make it.
                extra["status_table"] = config.env["STATUS_TABLE"]
            self._aws = provision(
                endpoint,
                queue_name=f"chaos{uuid.uuid4().hex[:10]}.fifo",
                visibility_timeout=config.visibility_timeout,
                **extra,
            )
            self._sqs = boto3.session.Session().client(
                "sqs", endpoint_url=endpoint, region_name=self._aws.region
            )
            self._sink = self._start_sink()
            port = free_port()
            self._start(
                "limbo-api",
                [script("limbo-api")],
                self.limbo_env(PORT=str(port)),
                f"http://127.0.0.1:{port}/health",
            )
            self._api = f"http://127.0.0.1:{port}"
            self.say(
                f"queue {self._aws.queue_url}, sink {self._sink}, api {self._api}, "
                f"logs in {self.logs}"
            )
            workers.start()
            started = time.monotonic()
            accepted, refused = self._submit()
            self.say(f"submitted: {len(accepted)} accepted, {refused} refused; draining")
            left = self._wait_until_drained()
            workers.stop_killing()
            self.failed_restarts = list(workers.failed_restarts)
            # An injected slow answer is recorded by the sink after the worker gave up.
            time.sleep(config.send_timeout + 3)
            seconds = time.monotonic() - started
            return self._report(accepted, refused, workers.kills, left, seconds)
        finally:
            workers.stop()
            for process in reversed(self._processes):
                process.stop(timeout=40)

    def _submit(self) -> tuple[set[str], int]:
        config = self.config
        accepted: set[str] = set()
        refused = 0
        lock = threading.Lock()
        next_index = iter(range(config.emails))
        depth = [0]
        done = threading.Event()

        def watch_depth() -> None:
            while not done.wait(0.5):
                # A missed sample only delays the next pause.
                with contextlib.suppress(Exception):
                    depth[0] = self._queue_depth()

        def client() -> None:
            nonlocal refused
            with httpx.Client(timeout=30) as http:
                while True:
                    with lock:
                        index = next(next_index, None)
                    if index is None:
                        return
                    while depth[0] > config.backlog:
                        time.sleep(0.2)
                    _, message_id = self._post(http, index)
                    with lock:
                        if message_id is not None:
                            accepted.add(message_id)
                        else:
                            refused += 1
                        total = len(accepted) + refused
                    if total % 1000 == 0:
                        self.say(f"{total} submitted, queue depth {depth[0]}")

        watcher = threading.Thread(target=watch_depth, daemon=True)
        watcher.start()
        with ThreadPoolExecutor(config.clients) as pool:
            for future in [pool.submit(client) for _ in range(config.clients)]:
                future.result()
        done.set()
        return accepted, refused

    def _post(self, http: httpx.Client, index: int) -> tuple[int, str | None]:
        mail = {
            "from": "chaos@example.com",
            "to": [f"r{index}@example.com"],
            "subject": f"chaos {index}",
            "message": f"fault-injection email {index}",
        }
        # A client retries a 503 as the API asks; only a final refusal counts as refused.
        for attempt in range(3):
            try:
                response = http.post(f"{self._api}/v1/mail", json=mail)
            except httpx.HTTPError:
                time.sleep(1)
                continue
            if response.status_code == 200:
                return 200, str(response.json()["id"])
            if response.status_code != 503 or attempt == 2:
                return response.status_code, None
            time.sleep(float(response.headers.get("Retry-After", "1")))
        return 0, None

    def _queue_depth(self) -> int:
        assert self._aws is not None and self._sqs is not None
        attributes = self._sqs.get_queue_attributes(
            QueueUrl=self._aws.queue_url,
            AttributeNames=[
                "ApproximateNumberOfMessages",
                "ApproximateNumberOfMessagesNotVisible",
                "ApproximateNumberOfMessagesDelayed",
            ],
        )["Attributes"]
        return sum(int(value) for value in attributes.values())

    def _wait_until_drained(self) -> int:
        deadline = time.monotonic() + self.config.settle_timeout
        empty_checks = 0
        depth = -1
        last_report = 0.0
        while time.monotonic() < deadline:
            depth = self._queue_depth()
            empty_checks = empty_checks + 1 if depth == 0 else 0
            if empty_checks >= 3:
                return 0
            if time.monotonic() - last_report > 10:
                self.say(f"queue depth {depth}")
                last_report = time.monotonic()
            time.sleep(0.5)
        return depth

    def _dead_letters(self) -> list[MessageTypeDef]:
        """Everything in the dead-letter queue (consumed: the queue is this run's own)."""
        assert self._aws is not None and self._sqs is not None
        letters: list[MessageTypeDef] = []
        empty = 0
        while empty < 3:
            batch = self._sqs.receive_message(
                QueueUrl=self._aws.dead_letter_url,
                MaxNumberOfMessages=10,
                WaitTimeSeconds=0,
                VisibilityTimeout=60,
                MessageAttributeNames=["All"],
            ).get("Messages", [])
            if not batch:
                empty += 1
                continue
            empty = 0
            letters += batch
            self._sqs.delete_message_batch(
                QueueUrl=self._aws.dead_letter_url,
                Entries=[
                    {"Id": str(i), "ReceiptHandle": m["ReceiptHandle"]} for i, m in enumerate(batch)
                ],
            )
        return letters

    def _report(
        self, accepted: set[str], refused: int, kills: int, left: int, seconds: float
    ) -> ChaosReport:
        sink = httpx.get(f"{self._sink}/messages", timeout=60).json()
        deliveries: Counter[str] = Counter()
        slow: Counter[str] = Counter()
        for message in sink["messages"]:
            message_id = message["fields"].get("h:X-Limbo-Message-Id", ["?"])[0]
            deliveries[message_id] += 1
            if message.get("injected") == "slow":
                slow[message_id] += 1
        dead: dict[str, str] = {}
        unexpected = []
        for letter in self._dead_letters():
            attribute = letter.get("MessageAttributes", {}).get("limbo-reason")
            reason = attribute.get("StringValue", "(no reason)") if attribute else "(no reason)"
            try:
                message_id = str(json.loads(letter["Body"])["id"])
            except (ValueError, KeyError, TypeError):
                message_id = "(unparseable)"
            dead[message_id] = reason
            if INJECTED_400 not in reason:
                unexpected.append(f"{message_id}: {reason}")
        duplicated = sum(count - 1 for count in deliveries.values() if count > 1)
        slow_duplicates = sum(min(slow[i], deliveries[i] - 1) for i in slow if deliveries[i] > 1)
        lost = sorted(accepted - set(deliveries) - set(dead))
        config = self.config
        return ChaosReport(
            emails=config.emails,
            accepted=len(accepted),
            refused=refused,
            delivered=len(accepted & set(deliveries)),
            deliveries=sum(deliveries.values()),
            dead_lettered=len(accepted & set(dead)),
            duplicated=duplicated,
            lost=len(lost),
            kills=kills,
            injected=dict(sink.get("failures", {})),
            # A killed worker can have sent at most its in-flight messages without
            # deleting them; an injected slow answer is accepted after the timeout.
            duplicate_bound=kills * config.concurrency
            + int(sink.get("failures", {}).get("slow", 0)),
            slow_duplicates=slow_duplicates,
            delivered_and_dead_lettered=len(set(deliveries) & set(dead)),
            unaccepted_deliveries=len(set(deliveries) - accepted),
            unexpected_dead_letters=unexpected,
            left_on_queue=left,
            failed_restarts=len(self.failed_restarts),
            tracking=config.tracking,
            seconds=seconds,
            lost_ids=lost,
        )

    def secrets(self) -> dict[str, str]:
        """Values that must never appear in a log line or a response."""
        basic = base64.b64encode(f"api:{self.mailgun_key}".encode()).decode()
        return {
            "MAILGUN": self.mailgun_key,
            "Mailgun basic auth": basic,
            "AWS_SECRET_ACCESS_KEY": self.aws_secret,
            "AWS_ACCESS_KEY_ID": self.aws_key_id,
        }

    def log_text(self) -> str:
        return "\n".join(p.read_text(errors="replace") for p in sorted(self.logs.glob("*.log")))


def run_chaos(config: ChaosConfig) -> tuple[ChaosReport, ChaosRun]:
    run = ChaosRun(config)
    return run.run(), run


def _pair(text: str) -> tuple[float, float]:
    low, _, high = text.partition(",")
    return float(low), float(high or low)


def main(argv: list[str] | None = None) -> None:
    parser = argparse.ArgumentParser(
        prog="limbo-chaos",
        description=__doc__,
        formatter_class=argparse.RawDescriptionHelpFormatter,
    )
    parser.add_argument("--emails", type=int, default=10_000)
    parser.add_argument("--workers", type=int, default=3)
    parser.add_argument(
        "--kill-every",
        type=_pair,
        default=(2.0, 5.0),
        metavar="LOW,HIGH",
        help="seconds between two SIGKILLs, drawn uniformly (default 2,5)",
    )
    parser.add_argument("--concurrency", type=int, default=32, help="CONCURRENCY per worker")
    parser.add_argument("--clients", type=int, default=16, help="parallel submitting clients")
    parser.add_argument(
        "--backlog",
        type=int,
        default=200,
        help="pause submitting while the queue holds more (default 200)",
    )
    parser.add_argument(
        "--endpoint",
        default=None,
        help="an SQS emulator already running (default: start a moto server)",
    )
    parser.add_argument(
        "--env",
        action="append",
        default=[],
        metavar="NAME=VALUE",
        help="extra environment for the API and workers, e.g. STATUS_TABLE=...",
    )
    parser.add_argument("--seed", type=int, default=None)
    parser.add_argument("--settle-timeout", type=float, default=600.0)
    parser.add_argument("--logs", type=Path, default=None, help="where process logs go")
    parser.add_argument("--json", action="store_true", help="print the report as JSON")
    args = parser.parse_args(argv)
    env = dict(item.split("=", 1) for item in args.env)
    for name, value in (("AWS_ACCESS_KEY_ID", "testing"), ("AWS_SECRET_ACCESS_KEY", "testing")):
        os.environ.setdefault(name, value)
    config = ChaosConfig(
        emails=args.emails,
        workers=args.workers,
        kill_every=args.kill_every,
        concurrency=args.concurrency,
        clients=args.clients,
        backlog=args.backlog,
        endpoint=args.endpoint,
        env=env,
        seed=args.seed,
        settle_timeout=args.settle_timeout,
        logs=args.logs,
        progress=not args.json,
    )
    # SIGTERM (e.g. a CI time-out) tears the processes down like Ctrl-C does.
    signal.signal(signal.SIGTERM, lambda *_: (_ for _ in ()).throw(KeyboardInterrupt()))
    report, _ = run_chaos(config)
    if args.json:
        data = asdict(report)
        data["problems"] = report.problems()
        print(json.dumps(data, indent=2))
    else:
        print(report.render())
    sys.exit(1 if report.problems() else 0)


if __name__ == "__main__":
    main()
