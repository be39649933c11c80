"""The chart lints cleanly and every object it renders is valid, strictly, for every
value combination in charts/limbo/ci/ and for the defaults."""

from __future__ import annotations

from pathlib import Path

import pytest

from .conftest import (
    CHART,
    CI_VALUES,
    KEDA_CRDS,
    KUBE_VERSIONS,
    helm,
    reference_file,
    render,
    values_id,
)
from .schemas import (
    keda_schemas,
    validate_crd_object,
    validate_kubernetes_object,
    validate_service_monitor,
)

# Every values file, and None for the chart's own values.yaml alone.
VALUES = [None, *CI_VALUES]
VALUES_IDS = ["chart-defaults", *(values_id(p) for p in CI_VALUES)]


def files(values: Path | None) -> list[Path]:
    return [] if values is None else [values]


@pytest.mark.parametrize("values", VALUES, ids=VALUES_IDS)
def test_helm_lint_strict_passes(values: Path | None) -> None:
    args = ["lint", "--strict", str(CHART)]
    if values is not None:
        args += ["--values", str(values)]
    result = helm(*args)
    assert "0 chart(s) failed" in result.stdout


@pytest.mark.parametrize("kube_version", KUBE_VERSIONS)
@pytest.mark.parametrize("values", VALUES, ids=VALUES_IDS)
def test_every_kubernetes_object_validates_strictly(values: Path | None, kube_version: str) -> None:
    objects = render(files(values), kube_version=kube_version)
    builtin = [
        o for o in objects if not o["apiVersion"].startswith(("keda.sh/", "monitoring.coreos.com/"))
    ]
    assert builtin
    for obj in builtin:
        validate_kubernetes_object(obj, kube_version)


@pytest.mark.parametrize("values", VALUES, ids=VALUES_IDS)
def test_keda_objects_validate_strictly_against_the_crds(values: Path | None) -> None:
    keda = [o for o in render(files(values)) if o["apiVersion"].startswith("keda.sh/")]
    schemas = keda_schemas(reference_file(KEDA_CRDS))
    for obj in keda:
        validate_crd_object(obj, schemas)


def test_the_strict_validators_reject_an_unknown_field() -> None:
    """The validation above would pass anything if strictness were lost somewhere."""
    objects = render([CHART / "ci" / "ingress-tls-values.yaml"])
    deployment = next(o for o in objects if o["kind"] == "Deployment")
    deployment["spec"]["template"]["spec"]["containers"][0]["readinessprobe"] = {}
    with pytest.raises(AssertionError, match="readinessprobe"):
        validate_kubernetes_object(deployment, KUBE_VERSIONS[0])
    monitor = next(o for o in objects if o["kind"] == "ServiceMonitor")
    monitor["spec"]["endpoints"][0]["intervall"] = "5s"
    with pytest.raises(AssertionError, match="intervall"):
        validate_service_monitor(monitor)
    crds = keda_schemas(reference_file(KEDA_CRDS))
    scaled = next(o for o in objects if o["kind"] == "ScaledObject")
    scaled["spec"]["triggers"][0]["authRef"] = {"name": "x"}
    with pytest.raises(AssertionError, match="authRef"):
        validate_crd_object(scaled, crds)
    scaled = next(o for o in objects if o["kind"] == "ScaledObject")
    scaled["spec"]["triggers"][0]["metadata"]["queueLength"] = 5
    with pytest.raises(AssertionError, match="queueLength"):
        validate_crd_object(scaled, crds)


def test_service_monitor_validates_strictly() -> None:
    monitors = [
        o
        for o in render([CHART / "ci" / "ingress-tls-values.yaml"])
        if o["kind"] == "ServiceMonitor"
    ]
    assert len(monitors) == 1
    validate_service_monitor(monitors[0])


def test_the_chart_refuses_a_kubernetes_older_than_its_floor() -> None:
    result = helm("template", "limbo", str(CHART), "--kube-version", "1.27.0", check=False)
    assert result.returncode != 0
    assert "kubeVersion" in result.stderr or "incompatible" in result.stderr
