"""Rendering charts/limbo with the real helm binary, for tests that read what it renders.

helm comes from PATH when there, else from .tools/bin (scripts/tools puts it there). With
neither, the tests fail with a message saying how to get it: a chart that was never
rendered must not pass as "skipped".
"""

from __future__ import annotations

import copy
import functools
import os
import shutil
import subprocess
from collections.abc import Iterable, Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import pytest
import yaml

from ..tooling import said, wait_for_tools

ROOT = Path(__file__).resolve().parents[2]
CHART = ROOT / "charts" / "limbo"
CI_VALUES = sorted((CHART / "ci").glob("*-values.yaml"))
# The published KEDA CRDs and skaffold schema, shipped with the tests (see its NOTICE.md).
REFERENCE = Path(__file__).resolve().parent / "reference"
KEDA_CRDS = REFERENCE / "keda-2.20.2-crds.yaml"
SKAFFOLD_SCHEMA = REFERENCE / "skaffold-v4beta14.json"


def reference_file(path: Path) -> Path:
    """A shipped reference schema; its absence is a failure, never a weaker check."""
    if not path.is_file():
        pytest.fail(f"{path} is missing: it ships with the tests (tests/chart/reference/)")
    return path


RELEASE = "limbo"
NAMESPACE = "mail"
# The oldest Kubernetes the chart admits (Chart.yaml kubeVersion) and the newest the
# kubernetes-validate package has schemas for, plus the one helm and kubectl v1.34 speak.
KUBE_VERSIONS = ("1.28.0", "1.34.0", "1.37.0")

Object = dict[str, Any]


def helm_binary() -> str:
    wait_for_tools()
    found = shutil.which("helm") or (
        str(ROOT / ".tools" / "bin" / "helm")
        if (ROOT / ".tools" / "bin" / "helm").exists()
        else None
    )
    if found is None:
        pytest.fail(
            "helm not found on PATH or in .tools/bin: run scripts/tools" + said(), pytrace=False
        )
    return found


def helm(*args: str, check: bool = True) -> subprocess.CompletedProcess[str]:
    # No repository cache or config from the user's home is needed or wanted.
    env = {
        **os.environ,
        "HELM_CACHE_HOME": str(ROOT / ".tools" / "helm" / "cache"),
        "HELM_CONFIG_HOME": str(ROOT / ".tools" / "helm" / "config"),
        "HELM_DATA_HOME": str(ROOT / ".tools" / "helm" / "data"),
    }
    result = subprocess.run(
        [helm_binary(), *args], capture_output=True, text=True, env=env, timeout=120
    )
    if check and result.returncode != 0:
        raise AssertionError(
            f"helm {' '.join(args)} exited {result.returncode}:\n{result.stdout}\n{result.stderr}"
        )
    return result


def values_args(values_files: Sequence[Path], sets: Sequence[str]) -> list[str]:
    args: list[str] = []
    for path in values_files:
        args += ["--values", str(path)]
    for item in sets:
        args += ["--set", item]
    return args


@functools.cache
def _render(
    values_files: tuple[Path, ...], sets: tuple[str, ...], kube_version: str, release: str
) -> tuple[Object, ...]:
    result = helm(
        "template",
        release,
        str(CHART),
        "--namespace",
        NAMESPACE,
        "--kube-version",
        kube_version,
        *values_args(values_files, sets),
    )
    loader = getattr(yaml, "CSafeLoader", yaml.SafeLoader)
    return tuple(doc for doc in yaml.load_all(result.stdout, Loader=loader) if doc)


def render(
    values_files: Iterable[Path] = (),
    sets: Iterable[str] = (),
    kube_version: str = KUBE_VERSIONS[-1],
    release: str = RELEASE,
) -> list[Object]:
    """Every object `helm template` prints, hooks and the test pod included (deep copies,
    so a test may change them)."""
    return copy.deepcopy(list(_render(tuple(values_files), tuple(sets), kube_version, release)))


def render_error(values_files: Iterable[Path] = (), sets: Iterable[str] = ()) -> str:
    result = helm(
        "template", RELEASE, str(CHART), *values_args(list(values_files), list(sets)), check=False
    )
    assert result.returncode != 0, "helm rendered values that should have been refused"
    return result.stderr


@dataclass(frozen=True)
class Rendered:
    """One rendering, indexed the way the assertions look things up."""

    objects: list[Object]

    def of_kind(self, kind: str) -> list[Object]:
        return [o for o in self.objects if o["kind"] == kind]

    def get(self, kind: str, name: str) -> Object:
        for o in self.objects:
            if o["kind"] == kind and o["metadata"]["name"] == name:
                return o
        raise AssertionError(
            f"no {kind} {name} among {[(o['kind'], o['metadata']['name']) for o in self.objects]}"
        )

    def find(self, kind: str, name: str) -> Object | None:
        try:
            return self.get(kind, name)
        except AssertionError:
            return None

    def pod_specs(self) -> list[tuple[Object, Object]]:
        """(owner object, pod spec) for every Deployment, Job and bare Pod."""
        specs = []
        for o in self.objects:
            if o["kind"] in ("Deployment", "Job"):
                specs.append((o, o["spec"]["template"]["spec"]))
            elif o["kind"] == "Pod":
                specs.append((o, o["spec"]))
        return specs


def values_id(path: Path) -> str:
    return path.name.removesuffix("-values.yaml")


@pytest.fixture(params=CI_VALUES, ids=values_id)
def ci_values(request: pytest.FixtureRequest) -> Path:
    return request.param  # type: ignore[no-any-return]


def rendered(*values_files: Path, sets: Iterable[str] = ()) -> Rendered:
    return Rendered(render(values_files, sets))
