"""Each service installs and imports alone.

``./scripts/test`` syncs the whole workspace into one ``.venv``, where a service could
import a sibling's dependency without declaring it and still pass every other test.
Here each service under ``services/`` gets a scratch environment holding only what
uv.lock gives it (``uv sync --frozen --package <name> --no-dev``), with the same
Python as ``.venv``, and there every console script's target must import, and every
module of the service's own package too.
"""

from __future__ import annotations

import os
import subprocess
import sys
from pathlib import Path

import pytest

from .workspace import ROOT, Member, services

UV = ROOT / ".tools" / "bootstrap" / "bin" / "uv"
# A sync from uv's cache takes about a second (hard links); a cold cache downloads.
SYNC_TIMEOUT = 240.0

# Run in the scratch environment with -I, so neither the working directory nor
# PYTHONPATH can lend it a module.
IMPORT_ALL = """
import importlib, pkgutil, sys
for target in sys.argv[1:]:
    module, _, function = target.partition(":")
    entry = getattr(importlib.import_module(module), function)
    assert callable(entry), target
    package = importlib.import_module(module.partition(".")[0])
    for info in pkgutil.walk_packages(package.__path__, package.__name__ + "."):
        importlib.import_module(info.name)
print("imported", " ".join(sys.argv[1:]))
"""


def scratch_sync(uv: Path, member: Member, environment: Path) -> Path:
    """Install ``member`` alone into ``environment``; answer its python."""
    env = {
        key: value for key, value in os.environ.items() if key not in ("VIRTUAL_ENV", "PYTHONPATH")
    }
    env |= {"UV_PROJECT_ENVIRONMENT": str(environment), "UV_PYTHON_DOWNLOADS": "never"}
    done = subprocess.run(
        [
            str(uv),
            "sync",
            "--frozen",
            "--package",
            member.name,
            "--no-dev",
            "--python",
            sys.executable,
            "--quiet",
        ],
        cwd=ROOT,
        env=env,
        capture_output=True,
        text=True,
        timeout=SYNC_TIMEOUT,
        check=False,
    )
    if done.returncode != 0:
        pytest.fail(f"uv sync --package {member.name} failed:\n{done.stderr}", pytrace=False)
    return environment / "bin" / "python"


@pytest.fixture(scope="module")
def uv() -> Path:
    if not UV.is_file():
        pytest.fail(f"{UV} is missing: scripts/_bootstrap.sh installs it", pytrace=False)
    return UV


def test_every_service_is_found() -> None:
    found = services()
    assert {m.name for m in found} >= {"limbo-api", "limbo-ses-worker", "limbo-mailgun-worker"}
    assert all(m.scripts for m in found), "a service without a console script has no entry"


@pytest.mark.slow
@pytest.mark.parametrize("service", services(), ids=lambda m: m.name)
def test_service_imports_with_only_its_own_dependencies(
    service: Member, uv: Path, tmp_path: Path
) -> None:
    python = scratch_sync(uv, service, tmp_path / "env")
    done = subprocess.run(
        [str(python), "-I", "-c", IMPORT_ALL, *service.scripts.values()],
        cwd=tmp_path,
        capture_output=True,
        text=True,
        timeout=120,
        check=False,
    )
    if done.returncode != 0:
        pytest.fail(
            f"{service.name} does not import alone (a dependency missing from "
            f"{service.relative}/pyproject.toml?):\n{done.stderr[-3000:]}",
            pytrace=False,
        )
    assert done.stdout.startswith("imported"), done.stdout
