"""structlog for every limbo process, with the standard library routed through it.

Each line inside a request or a message carries the current trace and span ids and
whatever was bound with :func:`bind_message` (message id, provider).
"""

from __future__ import annotations

import logging
import sys
from typing import Any, TextIO

import structlog
from opentelemetry import trace

__all__ = ["bind_for_task", "bind_message", "get_logger", "setup_logging"]


def _add_trace_ids(_: Any, __: str, event: dict[str, Any]) -> dict[str, Any]:
    context = trace.get_current_span().get_span_context()
    if context.is_valid:
        event.setdefault("trace_id", format(context.trace_id, "032x"))
        event.setdefault("span_id", format(context.span_id, "016x"))
    return event


class _LineWriter(structlog.WriteLogger):
    """structlog's own writer, with the name add_logger_name reads. Lines from the
    standard library go through the same writer (:class:`_ToWriter`), so both share
    its lock on stdout and never interleave."""

    def __init__(self, name: str = "", file: TextIO | None = None) -> None:
        super().__init__(file)
        self.name = name


class _ToWriter(logging.Handler):
    def __init__(self, writer: _LineWriter) -> None:
        super().__init__()
        self._writer = writer

    def emit(self, record: logging.LogRecord) -> None:
        try:
            line = self.format(record)
        except Exception:
            self.handleError(record)
            return
        self._writer.msg(line)


def setup_logging(log_format: str | None, level: str = "info") -> None:
    """Configure structlog and the root logger once per process.

    limbo's own lines skip the standard library: a level filter bound at set-up drops a
    line below the level before any processor runs, and one that passes is rendered
    and written straight away (no LogRecord, no caller lookup, no handler chain). The
    standard library's lines (uvicorn, botocore) get the same fields and renderer.
    """
    if log_format is None:
        log_format = "console" if sys.stdout.isatty() else "json"
    renderer: Any = (
        structlog.processors.JSONRenderer()
        if log_format == "json"
        else structlog.dev.ConsoleRenderer(colors=sys.stdout.isatty())
    )
    numeric_level = logging.getLevelNamesMapping()[level.upper()]
    shared: list[Any] = [
        structlog.contextvars.merge_contextvars,
        structlog.stdlib.add_log_level,
        structlog.stdlib.add_logger_name,
        structlog.processors.TimeStamper(fmt="iso", utc=True),
        _add_trace_ids,
    ]
    stdout = sys.stdout
    structlog.configure(
        processors=[*shared, structlog.processors.format_exc_info, renderer],
        logger_factory=lambda *args: _LineWriter(str(args[0]) if args else "", stdout),
        wrapper_class=structlog.make_filtering_bound_logger(numeric_level),
        cache_logger_on_first_use=True,
    )
    formatter = structlog.stdlib.ProcessorFormatter(
        foreign_pre_chain=shared,
        processors=[
            structlog.stdlib.ProcessorFormatter.remove_processors_meta,
            structlog.processors.format_exc_info,
            renderer,
        ],
    )
    handler = _ToWriter(_LineWriter("", stdout))
    handler.setFormatter(formatter)
    root = logging.getLogger()
    root.handlers[:] = [handler]
    root.setLevel(numeric_level)
    # uvicorn and botocore bring handlers or chatty defaults of their own.
    for name in ("uvicorn", "uvicorn.error", "uvicorn.access"):
        logging.getLogger(name).handlers[:] = []
        logging.getLogger(name).propagate = True
    logging.getLogger("uvicorn.access").setLevel(logging.WARNING)
    for noisy in ("botocore", "boto3", "urllib3", "httpx", "httpcore"):
        logging.getLogger(noisy).setLevel(max(logging.WARNING, root.level))


def get_logger(name: str) -> Any:
    return structlog.get_logger(name)


def bind_message(**values: Any) -> Any:
    """Bind fields (message_id, provider...) to every log line until the token is reset."""
    return structlog.contextvars.bound_contextvars(**values)


def bind_for_task(**values: Any) -> None:
    """Bind fields to every later log line of the current asyncio task (a task runs in
    its own copy of the context, so they end with it): a consumer's handler binds the
    message's id this way, and the consumer's own lines about it carry the id too."""
    structlog.contextvars.bind_contextvars(**values)
