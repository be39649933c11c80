"""One JSON line per event, limbo's and the standard library's alike (logs.py).

Each case runs a fresh interpreter: logging is configured once per process.
"""

from __future__ import annotations

import json
import os
import subprocess
import sys

from limbo_devtools.processes import START_TIMEOUT

PROCESS = """
import logging, sys
from limbo_shared.logs import bind_message, get_logger, setup_logging

class Rendered:
    count = 0
    def __repr__(self):
        Rendered.count += 1
        return "rendered"

setup_logging("json", sys.argv[1])
log = get_logger("limbo.probe")
with bind_message(message_id="m-1"):
    log.info("queued", recipients=2, probe=Rendered())
    logging.getLogger("uvicorn.error").warning("from the standard library %s", "too")
try:
    1 / 0
except ZeroDivisionError:
    log.exception("failed")
log.warning("rendered", times=Rendered.count)
"""


def lines(level: str) -> list[dict[str, object]]:
    result = subprocess.run(
        [sys.executable, "-c", PROCESS, level],
        env={k: v for k, v in os.environ.items() if not k.startswith("OTEL_")},
        capture_output=True,
        text=True,
        timeout=START_TIMEOUT,
        check=True,
    )
    assert result.stderr == ""
    return [json.loads(line) for line in result.stdout.splitlines()]


def test_limbo_and_standard_library_lines_carry_the_same_fields() -> None:
    queued, stdlib, failed, summary = lines("info")
    for line in (queued, stdlib, failed, summary):
        assert {"event", "level", "logger", "timestamp"} <= line.keys(), line
    assert (queued["event"], queued["level"], queued["logger"]) == ("queued", "info", "limbo.probe")
    assert (queued["recipients"], queued["message_id"], queued["probe"]) == (2, "m-1", "rendered")
    assert (stdlib["event"], stdlib["level"], stdlib["logger"]) == (
        "from the standard library too",
        "warning",
        "uvicorn.error",
    )
    assert stdlib["message_id"] == "m-1", "bound fields reach the standard library's lines"
    assert failed["level"] == "error"
    assert "ZeroDivisionError" in str(failed["exception"])
    assert summary["times"] == 1


def test_a_line_below_the_level_is_neither_written_nor_rendered() -> None:
    written = lines("warning")
    assert [line["event"] for line in written] == [
        "from the standard library too",
        "failed",
        "rendered",
    ]
    assert written[-1]["times"] == 0, "the info line's values were never rendered"
