"""How every limbo process starts: settings read once from the environment (a bad value
exits 2 naming its variable, before anything else happens), then logging and tracing."""

from __future__ import annotations

from typing import TypeVar

from .config import ConfigError, LoggingSettings, exit_with_config_error, load_settings
from .logs import setup_logging
from .telemetry import Telemetry, setup_telemetry

__all__ = ["settings_or_exit", "start_observability"]

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
