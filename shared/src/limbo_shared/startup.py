"""How every limbo process starts: settings read once from the environment (a bad value
exits 2 naming its variable, before anything else happens), then logging and tracing;
once the clients are built, the heap is settled before the first request."""

from __future__ import annotations

import gc
from typing import TypeVar

from .aws import forget_botocore_data
from .config import ConfigError, LoggingSettings, exit_with_config_error, load_settings
from .logs import setup_logging
from .telemetry import Telemetry, setup_telemetry

__all__ = ["settings_or_exit", "settle_heap", "start_observability"]

S = TypeVar("S", bound=LoggingSettings)


def settings_or_exit(program: str, cls: type[S]) -> S:
    try:
        return load_settings(cls)
    except ConfigError as error:
        exit_with_config_error(program, error)


def start_observability(program: str, settings: LoggingSettings) -> Telemetry:
    """Logging as LOG_FORMAT/LOG_LEVEL say, then the tracer provider (OTEL_* variables);
    the caller shuts the returned telemetry down on its way out."""
    setup_logging(settings.log_format, settings.log_level)
    try:
        return setup_telemetry(program)
    except ConfigError as error:
        exit_with_config_error(program, error)


def settle_heap() -> None:
    """Collect what start-up dropped, then freeze what it kept; call once, just before
    serving.

    Building a boto3 client (one is made only to resolve the SQS endpoint) loads JSON
    models into reference cycles that only a full collection frees: collected now, their
    memory is reused by requests instead of the heap growing past it (about 4 MB of the
    API's resident set). Freezing the rest (modules, models, settings, routes: hundreds
    of thousands of objects that live as long as the process) keeps every later full
    collection from walking them again. The botocore data that only the process's loader
    still holds goes first (limbo_shared.aws.forget_botocore_data).
    """
    forget_botocore_data()
    gc.collect()
    gc.freeze()
