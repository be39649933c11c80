"""pip-audit over every package in uv.lock: no known vulnerability, or each one
documented below as not reachable from limbo.

The requirements come from uv.lock itself (every registry package at its locked
version, across all platforms and Python versions the lock covers); the workspace's
own packages are not on PyPI and are left out. uv.lock can pin two versions of one
package for different Python versions, so those go in a second audit.

pip-audit asks PyPI's JSON API for each version (/pypi/<name>/<version>/json). When
that API cannot be reached, or does not answer for the locked versions, nothing was
audited: the test then says so plainly and is skipped, or fails with
LIMBO_REQUIRE_AUDIT=1 (for a CI that must audit).
"""

from __future__ import annotations

import json
import os
import subprocess
import tomllib
from pathlib import Path
from typing import Any

import pytest

from limbo_devtools.processes import script

ROOT = Path(__file__).resolve().parents[2]

# Vulnerability id -> why limbo cannot reach it. Empty: nothing is excused today.
NOT_REACHABLE: dict[str, str] = {}


def locked_requirement_sets() -> list[list[str]]:
    lock = tomllib.loads((ROOT / "uv.lock").read_text())
    sets: list[dict[str, str]] = []
    for package in lock["package"]:
        if "registry" not in package.get("source", {}):
            continue  # limbo's own workspace packages
        free = next((s for s in sets if package["name"] not in s), None)
        if free is None:
            free = {}
            sets.append(free)
        free[package["name"]] = package["version"]
    return [[f"{name}=={version}" for name, version in sorted(s.items())] for s in sets]


def audit(requirements: list[str], workdir: Path, index: int) -> list[dict[str, Any]]:
    path = workdir / f"requirements-{index}.txt"
    path.write_text("\n".join(requirements) + "\n")
    report = workdir / f"audit-{index}.json"
    run = subprocess.run(
        [
            script("pip-audit"),
            "--requirement",
            str(path),
            "--no-deps",
            "--disable-pip",
            "--progress-spinner",
            "off",
            "--format",
            "json",
            "--output",
            str(report),
            "--timeout",
            "30",
            "--cache-dir",
            str(workdir / "cache"),
        ],
        capture_output=True,
        text=True,
        timeout=240,
        check=False,
    )
    # 0: nothing found, 1: vulnerabilities found; anything else is pip-audit failing.
    if run.returncode not in (0, 1) or not report.exists():
        unreachable(f"pip-audit exited {run.returncode}: {run.stderr.strip()[-1500:]}")
    return list(json.loads(report.read_text())["dependencies"])


def unreachable(message: str) -> None:
    message = (
        "could not audit the locked dependencies: PyPI's vulnerability API "
        f"(pypi.org/pypi/<name>/<version>/json) did not answer. {message}"
    )
    if os.environ.get("LIMBO_REQUIRE_AUDIT"):
        pytest.fail(message)
    pytest.skip(message)


@pytest.mark.slow
def test_locked_dependencies_have_no_known_vulnerability(tmp_path: Path) -> None:
    sets = locked_requirement_sets()
    assert sum(map(len, sets)) > 50  # the whole lock, not a stub of it
    # One package first: where PyPI's JSON API is out of reach, each of the ~170 lookups
    # fails in turn (half a minute of a test worker) on the way to the same skip below.
    probe = audit(sets[0][:1], tmp_path, len(sets))
    if probe and probe[0].get("skip_reason"):
        unreachable(f"the first lookup ({sets[0][0]}): {probe[0]['skip_reason']}")
    dependencies = [dep for i, reqs in enumerate(sets) for dep in audit(reqs, tmp_path, i)]

    found = [
        f"{dep['name']} {dep['version']}: {vuln['id']} ({', '.join(vuln.get('aliases', []))}) "
        f"fixed in {', '.join(vuln.get('fix_versions', [])) or 'no release yet'}"
        for dep in dependencies
        for vuln in dep.get("vulns", [])
        if vuln["id"] not in NOT_REACHABLE and not set(vuln.get("aliases", [])) & set(NOT_REACHABLE)
    ]
    assert not found, (
        "known vulnerabilities in locked dependencies; upgrade them (uv lock "
        "--upgrade-package NAME) or document each in NOT_REACHABLE with why limbo "
        "cannot reach it:\n" + "\n".join(found)
    )

    skipped = [dep for dep in dependencies if dep.get("skip_reason")]
    if skipped:
        unreachable(
            f"{len(skipped)} of {len(dependencies)} packages were not audited, "
            f"e.g. {skipped[0]['skip_reason']}"
        )
