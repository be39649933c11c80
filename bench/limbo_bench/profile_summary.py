"""Summarise a py-spy ``--format raw`` profile by where the time goes (package groups).

``python -m limbo_bench.profile_summary PROFILE``: each sample is charged to the first
known package found walking from the leaf frame towards the root.
"""
# ruff: noqa
import sys, collections, re
CATS = [("tracing (OpenTelemetry)", ("opentelemetry", "trace/__init__", "asgi/__init__", "attributes/__init__", "trace/sampling", "trace/span", "context/__init__", "context/contextvars", "_decorator.py", "propagat", "sdk/util", "instrumentation/utils", "utils.py")),
        ("logging (structlog/logging)", ("structlog", "logging/__init__")),
        ("SQS client (botocore/urllib3)", ("botocore", "urllib3", "http/client", "boto3")),
        ("provider HTTP (httpx/transport)", ("httpx", "limbo_mailgun_worker/transport")),
        ("validation (pydantic/email_validator/json)", ("pydantic", "email_validator", "json/", "validation.py", "schema.py")),
        ("metrics (prometheus_client)", ("prometheus_client",)),
        ("thread pool hand-off", ("concurrent/futures", "threading.py")),
        ("uuid4 (getrandom)", ("uuid.py",)),
        ("HTTP server (uvicorn/starlette)", ("uvicorn", "starlette", "httptools")),
        ("limbo code", ("limbo_",)),
        ("asyncio/uvloop", ("asyncio", "uvloop")),
        ]
c = collections.Counter(); total = 0
for line in open(sys.argv[1]):
    line = line.rstrip()
    if not line: continue
    stack, n = line.rsplit(" ", 1); n = int(n); total += n
    frames = stack.split(";")
    cat = "other"
    for f in reversed(frames):
        for name, keys in CATS:
            if any(k in f for k in keys):
                cat = name; break
        if cat != "other": break
    c[cat] += n
for k, v in c.most_common(): print(f"{100*v/total:5.1f}%  {k}")
print("samples", total)
