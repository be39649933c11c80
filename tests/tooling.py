"""What scripts/tools installs into .tools/, waited for.

On a new machine scripts/tools takes about two minutes (apt-get, npm, debootstrap), most
of it waiting on the network, so ./scripts/test runs it beside the suite: it holds an
exclusive lock on .tools/tools.lock until it is done and writes .tools/tools.log. The
tests that need its tools (tests/chart, tests/images) wait here for the lock first, then
check for what they need and fail naming what is missing.
"""

from __future__ import annotations

import fcntl
import functools
import time
from pathlib import Path

import pytest

TOOLS = Path(__file__).resolve().parents[1] / ".tools"
LOCK = TOOLS / "tools.lock"
LOG = TOOLS / "tools.log"
# Its slowest step, debootstrap on a slow mirror, has been seen near three minutes.
WAIT_SECONDS = 900.0


@functools.cache
def wait_for_tools() -> None:
    """Return once scripts/tools is not running (at once when nothing started it)."""
    if not LOCK.exists():
        return
    deadline = time.monotonic() + WAIT_SECONDS
    with LOCK.open("rb") as lock:
        while True:
            try:
                fcntl.flock(lock, fcntl.LOCK_SH | fcntl.LOCK_NB)
            except BlockingIOError:
                if time.monotonic() > deadline:
                    pytest.fail(
                        f"scripts/tools still holds {LOCK} after {WAIT_SECONDS:.0f} s; "
                        f"its output so far: {LOG}\n{tools_log()[-3000:]}",
                        pytrace=False,
                    )
                time.sleep(0.5)
            else:
                fcntl.flock(lock, fcntl.LOCK_UN)
                return


def tools_log() -> str:
    return LOG.read_text(errors="replace") if LOG.exists() else ""


def reported() -> list[str]:
    """What scripts/tools reported doing or failing to do (its lines naming itself)."""
    return [line for line in tools_log().splitlines() if line.startswith("scripts/tools:")]


def said() -> str:
    """For a failure message: what scripts/tools reported, if anything."""
    lines = reported()
    return ("\n" + "\n".join(lines) + f"\n(all of it in {LOG})") if lines else ""
