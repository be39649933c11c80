"""Summarise a py-spy ``--format raw`` profile by where the time goes (package groups).

``python -m limbo_bench.profile_summary PROFILE`` (from ``bench/``): each sample is
charged to the first known group found walking from the leaf frame towards the root.
py-spy shortens file names (``trace/__init__.py``), hence the path fragments below.
"""

from __future__ import annotations

import sys
from collections import Counter

__all__ = ["GROUPS", "summarise"]

GROUPS: list[tuple[str, tuple[str, ...]]] = [
    (
        "tracing (OpenTelemetry)",
        (
            "opentelemetry",
            "trace/__init__",
            "asgi/__init__",
            "attributes/__init__",
            "trace/sampling",
            "trace/span",
            "context/__init__",
            "context/contextvars",
            "_decorator.py",
            "propagat",
            "sdk/util",
            "instrumentation/utils",
            "utils.py",
        ),
    ),
    ("logging (structlog/logging)", ("structlog", "logging/__init__")),
    (
        "SQS client (limbo's event-loop client, botocore)",
        ("sqs_http.py", "sigv4.py", "botocore", "urllib3", "http/client", "boto3"),
    ),
    # aiohttp carries both the event-loop SQS client's calls and the Mailgun worker's.
    (
        "HTTP client (aiohttp, httpx)",
        ("httpx", "httpcore", "aiohttp", "httpx_aiohttp", "multidict", "yarl"),
    ),
    (
        "validation (pydantic/email_validator/json)",
        ("pydantic", "email_validator", "json/", "validation.py", "schema.py"),
    ),
    ("metrics (prometheus_client)", ("prometheus_client",)),
    ("thread pool hand-off", ("concurrent/futures", "threading.py")),
    ("uuid4 (getrandom)", ("uuid.py",)),
    ("HTTP server (uvicorn/starlette)", ("uvicorn", "starlette", "httptools")),
    ("limbo code", ("limbo_",)),
    ("asyncio/uvloop", ("asyncio", "uvloop")),
]


def summarise(lines: list[str]) -> tuple[Counter[str], int]:
    groups: Counter[str] = Counter()
    total = 0
    for line in lines:
        line = line.rstrip()
        if not line:
            continue
        stack, count_text = line.rsplit(" ", 1)
        count = int(count_text)
        total += count
        group = "other"
        for frame in reversed(stack.split(";")):
            found = next((name for name, keys in GROUPS if any(k in frame for k in keys)), None)
            if found is not None:
                group = found
                break
        groups[group] += count
    return groups, total


def main() -> None:
    with open(sys.argv[1]) as profile:
        groups, total = summarise(profile.readlines())
    for name, count in groups.most_common():
        print(f"{100 * count / total:5.1f}%  {name}")
    print("samples", total)


if __name__ == "__main__":
    main()
