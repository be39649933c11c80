"""Settings read once from the environment at start-up.

Every process builds one settings object with :func:`load_settings`; a missing or
malformed variable stops the process with one line that names the variable, so an
operator reading `kubectl logs` knows what to fix without a traceback.
"""

from __future__ import annotations

import sys
from typing import Literal, NoReturn, TypeVar

from pydantic import Field, ValidationError, field_validator
from pydantic_settings import BaseSettings, SettingsConfigDict

from .errors import describe_settings_error

__all__ = [
    "ConfigError",
    "LoggingSettings",
    "QueueSettings",
    "load_settings",
    "standard_queue_url",
]

S = TypeVar("S", bound=BaseSettings)


class ConfigError(Exception):
    """A setting is missing or malformed; the message names the variable."""


class LoggingSettings(BaseSettings):
    model_config = SettingsConfigDict(case_sensitive=False, extra="ignore")

    # json in containers, console for people; unset means "console when stdout is a terminal".
    log_format: Literal["json", "console"] | None = None
    log_level: Literal["debug", "info", "warning", "error"] = "info"

    @field_validator("log_format", "log_level", mode="before")
    @classmethod
    def _lower(cls, value: object) -> object:
        return value.lower() if isinstance(value, str) else value


class QueueSettings(LoggingSettings):
    """What every limbo process needs to reach the queue."""

    queue: str = Field(description="URL of the SQS FIFO queue of the transactional stream")
    bulk_queue: str | None = Field(
        default=None,
        description="URL of the bulk stream's SQS FIFO queue; unset: bulk mail shares QUEUE",
    )
    region: str = Field(min_length=1, description="AWS region of the queue")
    aws_endpoint_url: str | None = Field(
        default=None, description="boto3's standard override, to point at an emulator"
    )

    @field_validator("bulk_queue")
    @classmethod
    def _bulk_fifo_url(cls, value: str | None) -> str | None:
        return None if value in (None, "") else _fifo_queue_url(str(value))

    @field_validator("queue")
    @classmethod
    def _fifo_url(cls, value: str) -> str:
        return _fifo_queue_url(value)

    @field_validator("aws_endpoint_url")
    @classmethod
    def _endpoint(cls, value: str | None) -> str | None:
        if value in (None, ""):
            return None
        assert value is not None
        if not value.startswith(("http://", "https://")):
            raise ValueError("must be an http(s) URL")
        return value.rstrip("/")

    @property
    def queue_name(self) -> str:
        return self.queue.rstrip("/").rsplit("/", 1)[-1]


def _fifo_queue_url(value: str) -> str:
    if not value.startswith(("http://", "https://")):
        raise ValueError("must be the queue's URL (https://sqs.<region>.amazonaws.com/...)")
    if not value.endswith(".fifo"):
        raise ValueError("must name a FIFO queue (its name ends in .fifo)")
    return value


def standard_queue_url(value: str) -> str:
    """Validate the URL of a standard SQS queue (per-message delays need one)."""
    if not value.startswith(("http://", "https://")):
        raise ValueError("must be the queue's URL (https://sqs.<region>.amazonaws.com/...)")
    if value.endswith(".fifo"):
        raise ValueError("must name a standard queue, not a FIFO one (per-message delays)")
    return value


def load_settings(cls: type[S]) -> S:
    """Build ``cls`` from the environment, raising ConfigError naming the variable."""
    try:
        return cls()
    except ValidationError as error:
        raise ConfigError(describe_settings_error(error)) from None


def exit_with_config_error(program: str, error: ConfigError) -> NoReturn:
    print(f"{program}: configuration error: {error}", file=sys.stderr)
    raise SystemExit(2)
