"""The gates CI holds every change to: ruff's lint and format, and mypy --strict over
every package (see workspace.py for how they are found).

Each runs as a subprocess from the repository root, with the configuration in the root
pyproject, and fails showing the tool's own report. mypy keeps its cache in
``.mypy_cache``: a fresh clone pays a full check once (15-40 s on a loaded 2-core
machine), later runs only recheck what changed.
"""

from __future__ import annotations

import subprocess

import pytest

from limbo_devtools.processes import script

from .workspace import ROOT, services, typed_sources

# A cold mypy run takes up to ~40 s on a loaded 2-core machine; leave it far more.
TOOL_TIMEOUT = 240.0


def run_tool(*command: str) -> None:
    done = subprocess.run(
        [script(command[0]), *command[1:]],
        cwd=ROOT,
        capture_output=True,
        text=True,
        timeout=TOOL_TIMEOUT,
        check=False,
    )
    if done.returncode != 0:
        pytest.fail(
            f"`{' '.join(command)}` exited {done.returncode}:\n{done.stdout}{done.stderr}",
            pytrace=False,
        )


def test_discovery_finds_every_package() -> None:
    # Guards the gates themselves: a discovery that found nothing would check nothing.
    sources = typed_sources()
    assert {"shared/src", "devtools/src", "bench"} <= set(sources)
    assert {m.name for m in services()} >= {"limbo-api", "limbo-ses-worker"}
    assert all((ROOT / source).is_dir() for source in sources), sources
    assert len([s for s in sources if s.startswith("services/")]) == len(services())


def test_ruff_check_is_clean() -> None:
    run_tool("ruff", "check", "--no-cache", ".")


def test_ruff_format_is_clean() -> None:
    run_tool("ruff", "format", "--check", "--no-cache", ".")


def test_mypy_strict_is_clean_over_every_package() -> None:
    run_tool("mypy", "--strict", *typed_sources())
