"""One fault-injection run: the stack started through the launcher, load, kills, report."""

from __future__ import annotations

import base64
import time
import uuid
from pathlib import Path

import httpx

from ..launcher import Launcher
from ..processes import Process
from .config import ChaosConfig
from .killer import Killer
from .load import Load
from .report import ChaosReport, build_report

__all__ = ["MAILGUN_KEY_PREFIX", "ChaosRun", "run_chaos"]

MAILGUN_KEY_PREFIX = "key-chaos-"
# Receives before SQS moves a message to the dead-letter queue (the default is 5).
CHAOS_MAX_RECEIVE_COUNT = 10


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
        self.launcher = Launcher(
            self.logs,
            env={
                "AWS_ACCESS_KEY_ID": self.aws_key_id,
                "AWS_SECRET_ACCESS_KEY": self.aws_secret,
                "LOG_FORMAT": "json",
                "WAIT_TIME_SECONDS": "2",
                # The run submits without keys; --env API_KEYS=... with a key can override.
                "AUTH": "disabled",
                **config.env,
            },
            mailgun_key=self.mailgun_key,
        )

    def say(self, text: str) -> None:
        if self.config.progress:
            print(f"[chaos {time.strftime('%H:%M:%S')}] {text}", flush=True)

    def start_worker(self) -> Process:
        config = self.config
        process, _ = self.launcher.start(
            "mailgun-worker",
            extra={
                "CONCURRENCY": str(config.concurrency),
                "SEND_TIMEOUT": str(config.send_timeout),
                "VISIBILITY_TIMEOUT": str(config.visibility_timeout),
                "RETRY_BASE_SECONDS": "1",
                "RETRY_MAX_SECONDS": "5",
                "SHUTDOWN_GRACE": "10",
            },
        )
        return process

    def run(self) -> ChaosReport:
        config = self.config
        launcher = self.launcher
        killer = Killer(
            self.start_worker,
            workers=config.workers,
            kill_every=config.kill_every,
            seed=config.seed,
            say=self.say,
        )
        try:
            aws = launcher.provision(
                config.endpoint or launcher.emulator(),
                queue_name=f"chaos{uuid.uuid4().hex[:10]}.fifo",
                visibility_timeout=config.visibility_timeout,
                status_table=config.env.get("STATUS_TABLE") or None,
                # Only the injected 400s may end as dead letters. The queue's redrive
                # policy, not MAX_ATTEMPTS, counts attempts, and every kill costs the
                # messages in flight a receive: with ~10 % transient failures and a kill
                # every 2-4 s, five receives ran out (a send killed before its delete on
                # the fifth, moved by SQS with no reason; a 500 as the fifth).
                max_receive_count=CHAOS_MAX_RECEIVE_COUNT,
            )
            sink = launcher.sink(config.sink(self.mailgun_key))
            api = launcher.start("api")[1]
            self.say(f"queue {aws.queue_url}, sink {sink}, api {api}, logs in {self.logs}")
            load = Load(config, aws, api, self.say)
            killer.start()
            started = time.monotonic()
            accepted, refused = load.submit()
            self.say(f"submitted: {len(accepted)} accepted, {refused} refused; draining")
            left = load.wait_until_drained()
            killer.stop_killing()
            # An injected slow answer is recorded by the sink after the worker gave up.
            time.sleep(config.send_timeout + 3)
            seconds = time.monotonic() - started
            return build_report(
                config,
                sink=httpx.get(f"{sink}/messages", timeout=60).json(),
                dead_letters=load.dead_letters(),
                accepted=accepted,
                refused=refused,
                kills=killer.kills,
                failed_restarts=len(killer.failed_restarts),
                left=left,
                seconds=seconds,
            )
        finally:
            killer.stop()
            launcher.stop(timeout=40)

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
        return self.launcher.log_text()


def run_chaos(config: ChaosConfig) -> tuple[ChaosReport, ChaosRun]:
    run = ChaosRun(config)
    return run.run(), run
