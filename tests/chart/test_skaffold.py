"""skaffold.yaml: valid against skaffold's schema, builds every image from the repository
root, and deploys the chart with exactly those images; on a local cluster it brings the
emulators and forwards the API's and Jaeger's ports."""

from __future__ import annotations

import json
import re
from typing import Any

import jsonschema
import pytest
import yaml

from .conftest import ROOT, SKAFFOLD_SCHEMA, Rendered, reference_file, render

SKAFFOLD = ROOT / "skaffold.yaml"
IMAGES = {
    "limbo-api": "api",
    "limbo-ses-worker": "sesWorker",
    "limbo-mailgun-worker": "mailgunWorker",
    "limbo-webhooks": "webhooks",
    "limbo-events": "events",
    "limbo-devtools": "devtools",
}
TEMPLATE = re.compile(r"^\{\{\.IMAGE_(REPO|TAG)_([A-Za-z0-9_]+)\}\}$")


def config() -> dict[str, Any]:
    loaded: dict[str, Any] = yaml.safe_load(SKAFFOLD.read_text())
    return loaded


def releases() -> list[tuple[str, dict[str, Any]]]:
    """(where, release) for the base deploy and every profile's."""
    skaffold = config()
    found = [("base", r) for r in skaffold["deploy"]["helm"]["releases"]]
    for profile in skaffold.get("profiles", []):
        for release in profile.get("deploy", {}).get("helm", {}).get("releases", []):
            found.append((profile["name"], release))
    return found


def profile(name: str) -> dict[str, Any]:
    return next(p for p in config()["profiles"] if p["name"] == name)


def test_skaffold_yaml_is_valid_against_skaffolds_schema() -> None:
    skaffold = config()
    version = re.fullmatch(r"skaffold/v4beta(\d+)", skaffold["apiVersion"])
    assert version and int(version.group(1)) >= 13
    assert skaffold["kind"] == "Config"
    schema = json.loads(reference_file(SKAFFOLD_SCHEMA).read_text())
    errors = list(jsonschema.Draft7Validator(schema).iter_errors(skaffold))
    assert not errors, [f"{'/'.join(map(str, e.absolute_path))}: {e.message}" for e in errors]
    broken = {**skaffold, "deploy": {"helm": {"releases": [{"name": "x", "chartPth": "y"}]}}}
    assert list(jsonschema.Draft7Validator(schema).iter_errors(broken)), "schema is not strict"


def test_every_image_builds_from_the_repository_root_with_the_one_dockerfile() -> None:
    artifacts = config()["build"]["artifacts"]
    assert [a["image"] for a in artifacts] == list(IMAGES)
    for artifact in artifacts:
        assert artifact["context"] == "."
        docker = artifact["docker"]
        assert docker["dockerfile"] == "Dockerfile"
        dockerfile = (ROOT / docker["dockerfile"]).read_text()
        # The services build from the Dockerfile's defaults (one shared virtual
        # environment); only devtools names what it installs. The target is a stage.
        expected = {"PACKAGES": "limbo-devtools"} if artifact["image"] == "limbo-devtools" else {}
        assert docker.get("buildArgs", {}) == expected
        assert re.search(rf"^FROM \S+ AS {re.escape(docker['target'])}$", dockerfile, re.M)
        # Docker's classic builder cannot run RUN --mount: skaffold must ask for BuildKit.
        if "RUN --mount" in dockerfile:
            assert config()["build"]["local"]["useBuildkit"] is True


@pytest.mark.parametrize(("where", "release"), releases(), ids=[w for w, _ in releases()])
def test_each_release_sets_every_built_image_through_value_templates(
    where: str, release: dict[str, Any]
) -> None:
    assert (ROOT / release["chartPath"] / "Chart.yaml").is_file()
    for values in release.get("valuesFiles", []):
        assert (ROOT / values).is_file(), values
    chart_values = yaml.safe_load((ROOT / release["chartPath"] / "values.yaml").read_text())
    wanted = {f"{key}.image.{part}" for key in IMAGES.values() for part in ("repository", "tag")}
    templates: dict[str, str] = release["setValueTemplates"]
    assert set(templates) == wanted
    for key, template in templates.items():
        block = chart_values
        for part in key.split("."):
            assert part in block, f"{where}: {key} is not a value of the chart"
            block = block[part]
        match = TEMPLATE.match(template)
        assert match, template
        # skaffold names the variables after the image, dashes turned into underscores.
        image = match.group(2).replace("_", "-")
        assert image in IMAGES
        assert key == f"{IMAGES[image]}.image.{'repository' if match.group(1) == 'REPO' else 'tag'}"


def skaffold_render(where: str, *extra: str) -> Rendered:
    """The chart as skaffold deploys it, with the templates filled in the way skaffold does
    (``extra``: more ``--set`` values, as a user's own would add)."""
    (release,) = [r for w, r in releases() if w == where]
    sets = list(extra)
    for key, template in release["setValueTemplates"].items():
        match = TEMPLATE.match(template)
        assert match
        image = match.group(2).replace("_", "-")
        sets.append(f"{key}={'dev.local/' + image if match.group(1) == 'REPO' else 'deadbeef'}")
    values = [ROOT / v for v in release.get("valuesFiles", [])]
    return Rendered(render(values, sets, release=release["name"]))


@pytest.mark.parametrize("where", ["local", "keda"])
def test_the_deployed_pods_run_the_images_skaffold_built(where: str) -> None:
    r = skaffold_render(where)
    images = {
        c["image"]
        for _, pod in r.pod_specs()
        for c in pod["containers"] + pod.get("initContainers", [])
    }
    # The webhook worker needs a status table, which the local values leave out.
    built = {f"dev.local/{image}:deadbeef" for image in IMAGES if image != "limbo-webhooks"}
    assert built <= images
    assert images - built <= {"jaegertracing/jaeger:2.15.0"}


def test_the_webhook_worker_runs_the_image_skaffold_built_once_enabled() -> None:
    r = skaffold_render(
        "base",
        "webhooks.enabled=true",
        "webhooks.queueUrl=https://sqs.us-east-1.amazonaws.com/123456789012/limbo-webhooks",
        "tracking.statusTable=limbo-status",
        "queue.url=https://sqs.us-east-1.amazonaws.com/123456789012/limbo.fifo",
        "sesWorker.sender=limbo@example.com",
    )
    images = {c["image"] for _, pod in r.pod_specs() for c in pod["containers"]}
    assert "dev.local/limbo-webhooks:deadbeef" in images


def test_the_local_profile_switches_itself_on_for_local_clusters_only() -> None:
    local = profile("local")
    (activation,) = local["activation"]
    pattern = re.compile(activation["kubeContext"])
    for context in (
        "kind-kind",
        "kind-limbo",
        "minikube",
        "k3d-dev",
        "docker-desktop",
        "rancher-desktop",
        "orbstack",
    ):
        assert pattern.match(context), context
    for context in ("arn:aws:eks:eu-west-1:123456789012:cluster/prod", "gke_p_z_c", "prod"):
        assert not pattern.match(context), context
    release = local["deploy"]["helm"]["releases"][0]
    assert release["valuesFiles"] == ["charts/limbo/ci/local-values.yaml"]
    assert "activation" not in profile("keda"), "KEDA locally only when asked for"


@pytest.mark.parametrize("where", ["local", "keda"])
def test_port_forwards_reach_the_api_and_jaeger(where: str) -> None:
    r = skaffold_render(where)
    forwards = profile(where)["portForward"]
    for forward in forwards:
        assert forward["resourceType"] == "service"
        service = r.get("Service", forward["resourceName"])
        assert forward["port"] in {p["port"] for p in service["spec"]["ports"]}
    by_component = {
        r.get("Service", f["resourceName"])["metadata"]["labels"]["app.kubernetes.io/component"]: f
        for f in forwards
    }
    assert by_component["api"]["localPort"] == 8080
    assert by_component["jaeger"]["port"] == 16686
