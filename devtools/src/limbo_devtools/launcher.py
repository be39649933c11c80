"""The local stack, started one way for the local run, the tests, the chaos run and the benchmark.

Each process limbo runs on a developer's machine is one entry of :data:`COMPONENTS`:
the AWS emulator (``limbo-moto``: moto with atomic DynamoDB writes, which tracking's
conditional claims rely on), the Mailgun sink, the API and the workers. A new
component (an events consumer, a scheduler, a webhook worker) is one more entry; every
harness then starts it the same way with ``launcher.start("<name>")``.
"""

from __future__ import annotations

import os
from collections.abc import Callable, Mapping
from dataclasses import dataclass, field
from pathlib import Path
from types import TracebackType

from .local_aws import LocalAws, provision
from .mailgun_sink import SinkConfig
from .processes import Process, free_port, script

__all__ = ["COMPONENTS", "CREDENTIALS", "Component", "Launcher"]

# What boto3 and moto need to sign and accept requests; nothing real.
CREDENTIALS = {"AWS_ACCESS_KEY_ID": "testing", "AWS_SECRET_ACCESS_KEY": "testing"}


def _no_env(launcher: Launcher) -> dict[str, str]:
    return {}


@dataclass(frozen=True)
class Component:
    """How to start one kind of process and know that it is ready."""

    script: str
    health_path: str = "/health"
    # The variable that carries the port; None: the port goes into ``arguments``.
    port_variable: str | None = "PORT"
    arguments: tuple[str, ...] = ()
    # limbo's own processes get the queue's environment and the launcher's ``env``.
    limbo: bool = True
    env: Callable[[Launcher], dict[str, str]] = _no_env


def _sink_env(launcher: Launcher) -> dict[str, str]:
    # The call's SINK_API_KEY (from a SinkConfig with a key) wins over this.
    return {"SINK_API_KEY": launcher.mailgun_key}


def _mailgun_env(launcher: Launcher) -> dict[str, str]:
    return {
        "MAILGUN": launcher.mailgun_key,
        "DOMAIN": launcher.mailgun_domain,
        # A harness with a sink of its own names it in the call's environment.
        **({"MAILGUN_API_URL": launcher.urls["sink"]} if "sink" in launcher.urls else {}),
    }


def _webhooks_env(launcher: Launcher) -> dict[str, str]:
    # The webhook worker consumes the webhook queue (a standard one), and dead-letters
    # nothing into the mail queue's FIFO dead-letter queue.
    queue = launcher.aws.webhook_queue_url if launcher.aws is not None else None
    return {"DEADLETTERQUEUE": "", **({"QUEUE": queue} if queue else {})}


COMPONENTS: dict[str, Component] = {
    "emulator": Component(
        "limbo-moto",
        health_path="/moto-api/",
        port_variable=None,
        arguments=("-H", "127.0.0.1", "-p", "{port}"),
        limbo=False,
    ),
    "sink": Component("limbo-mailgun-sink", port_variable="SINK_PORT", limbo=False, env=_sink_env),
    "api": Component("limbo-api"),
    "scheduler": Component("limbo-scheduler"),
    "ses-worker": Component("limbo-ses-worker"),
    "mailgun-worker": Component("limbo-mailgun-worker", env=_mailgun_env),
    # Applies delivery events (SES via SNS, Mailgun webhooks) to the status table.
    "events": Component("limbo-events"),
    "webhooks": Component("limbo-webhooks", env=_webhooks_env),
    "webhook-receiver": Component(
        "limbo-webhook-receiver", port_variable="RECEIVER_PORT", limbo=False
    ),
}


@dataclass
class Launcher:
    """Starts components in order, remembers them, stops them in reverse.

    Environment of a limbo process, later entries winning: this process's own, the
    provisioned queue's (:meth:`provision`), ``env``, the component's entry, the call's.
    """

    logs: Path
    env: dict[str, str] = field(default_factory=dict)
    mailgun_key: str = "key-test"
    mailgun_domain: str = "mg.example.com"
    start_timeout: float = 60.0
    aws: LocalAws | None = None
    processes: list[Process] = field(default_factory=list)
    # The base URL of the last process started, per component.
    urls: dict[str, str] = field(default_factory=dict)

    def start(
        self,
        name: str,
        *,
        port: int | None = None,
        console: bool = False,
        extra: Mapping[str, str] | None = None,
    ) -> tuple[Process, str]:
        """Start component ``name``; answer the process and its base URL once healthy.

        ``console`` sends its output to this process's terminal instead of a log file.
        """
        component = COMPONENTS[name]
        port = port or free_port()
        url = f"http://127.0.0.1:{port}"
        environment = dict(CREDENTIALS)
        if component.limbo:
            environment |= self.limbo_env()
        environment |= component.env(self) | dict(extra or {})
        if component.port_variable is not None:
            environment[component.port_variable] = str(port)
        arguments = [argument.format(port=port) for argument in component.arguments]
        process = Process(
            name,
            [script(component.script), *arguments],
            env=environment,
            health_url=url + component.health_path,
            log_path=None if console else self.logs / f"{component.script}-{port}.log",
        )
        self.processes.append(process)
        process.start(timeout=self.start_timeout)
        self.urls[name] = url
        return process, url

    def url(self, name: str) -> str:
        """The URL of the last ``name`` started."""
        if name not in self.urls:
            raise LookupError(f"no {name} has been started")
        return self.urls[name]

    def emulator(self, *, port: int | None = None, extra: Mapping[str, str] | None = None) -> str:
        return self.start("emulator", port=port, extra=extra)[1]

    def sink(self, config: SinkConfig | None = None, *, port: int | None = None) -> str:
        """A Mailgun sink behaving as ``config`` says, with the launcher's key by default."""
        return self.start("sink", port=port, extra=(config or SinkConfig()).to_env())[1]

    def provision(
        self,
        endpoint: str | None = None,
        *,
        queue_name: str = "limbo.fifo",
        sender: str = "limbo@example.com",
        visibility_timeout: int = 30,
        status_table: str | None = None,
        events: bool = False,
        max_receive_count: int = 5,
    ) -> LocalAws:
        """The queues, the sender, (with ``status_table``) the table and (with ``events``)
        the delivery-event path, on the emulator; every limbo process started afterwards
        is given them."""
        for name, value in CREDENTIALS.items():
            os.environ.setdefault(name, value)
        self.aws = provision(
            endpoint or self.url("emulator"),
            queue_name=queue_name,
            sender=sender,
            visibility_timeout=visibility_timeout,
            status_table=status_table,
            events=events,
            max_receive_count=max_receive_count,
        )
        return self.aws

    def limbo_env(self, **extra: str) -> dict[str, str]:
        queue = self.aws.environment() if self.aws is not None else {}
        return {**queue, **self.env, **extra}

    def log_text(self) -> str:
        return "\n".join(p.read_text(errors="replace") for p in sorted(self.logs.glob("*.log")))

    def stop(self, timeout: float = 40.0) -> None:
        while self.processes:
            self.processes.pop().stop(timeout=timeout)

    def __enter__(self) -> Launcher:
        self.logs.mkdir(parents=True, exist_ok=True)
        return self

    def __exit__(
        self,
        kind: type[BaseException] | None,
        error: BaseException | None,
        traceback: TracebackType | None,
    ) -> None:
        self.stop()
