"""structlog for every limbo process, with the standard library routed through it.

Each line inside a request or a message carries the current trace and span ids and
whatever was bound with :func:`bind_message` (message id, provider).
"""

from __future__ import annotations

import logging
import sys
from typing import Any

import structlog
from opentelemetry import trace

__all__ = ["bind_for_task", "bind_message", "get_logger", "setup_logging"]


def _add_trace_ids(_: Any, __: str, event: dict[str, Any]) -> dict[str, Any]:
    context = trace.get_current_span().get_span_context()
    if context.is_valid:
        event.setdefault("trace_id", format(context.trace_id, "032x"))
        event.setdefault("span_id", format(context.span_id, "016x"))
    return event


def setup_logging(log_format: str | None, level: str = "info") -> None:
    """Configure structlog and the root logger once per process."""
    if log_format is None:
        log_format = "console" if sys.stdout.isatty() else "json"
    renderer: Any = (
        structlog.processors.JSONRenderer()
        if log_format == "json"
        else structlog.dev.ConsoleRenderer(colors=sys.stdout.isatty())
    )
    shared: list[Any] = [
        structlog.contextvars.merge_contextvars,
        structlog.stdlib.add_log_level,
        structlog.stdlib.add_logger_name,
        structlog.processors.TimeStamper(fmt="iso", utc=True),
        _add_trace_ids,
    ]
    structlog.configure(
        processors=[
            *shared,
            structlog.stdlib.ProcessorFormatter.wrap_for_formatter,
        ],
        logger_factory=structlog.stdlib.LoggerFactory(),
        wrapper_class=structlog.stdlib.BoundLogger,
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
    handler = logging.StreamHandler(sys.stdout)
    handler.setFormatter(formatter)
    root = logging.getLogger()
    root.handlers[:] = [handler]
    root.setLevel(level.upper())
    # uvicorn and botocore bring handlers or chatty defaults of their own.
    for name in ("uvicorn", "uvicorn.error", "uvicorn.access"):
        logging.getLogger(name).handlers[:] = []
        logging.getLogger(name).propagate = True
    logging.getLogger("uvicorn.access").setLevel(logging.WARNING)
    for noisy in ("botocore", "boto3", "urllib3", "httpx", "httpcore"):
        logging.getLogger(noisy).setLevel(max(logging.WARNING, root.level))


def get_logger(name: str) -> Any:
    return structlog.stdlib.get_logger(name)


def bind_message(**values: Any) -> Any:
    """Bind fields (message_id, provider...) to every log line until the token is reset."""
    return structlog.contextvars.bound_contextvars(**values)


def bind_for_task(**values: Any) -> None:
    """Bind fields to every later log line of the current asyncio task (a task runs in
    its own copy of the context, so they end with it): a consumer's handler binds the
    message's id this way, and the consumer's own lines about it carry the id too."""
    structlog.contextvars.bind_contextvars(**values)
