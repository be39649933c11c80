"""values.schema.json and the chart's own checks refuse bad values at install time, naming
them, instead of letting a typo or a wrong type reach the pods."""

from __future__ import annotations

import json
import re
from typing import Any

import pytest
import yaml

from .conftest import CHART, render_error

DEFAULT = CHART / "ci" / "default-values.yaml"

REFUSED = [
    # (what a user might write, what the refusal must mention)
    (["typo=1"], "additional properties 'typo' not allowed"),
    (["api.replica=3"], "additional properties 'replica' not allowed"),
    (["sesWorker.autoscaling.queuelength=3"], "'queuelength' not allowed"),
    (["api.port=http"], "/api/port"),
    (["api.replicas=-1"], "/api/replicas"),
    (["keda.enabled=yes"], "/keda/enabled"),
    (["queue.url=https://sqs.eu-west-1.amazonaws.com/123456789012/standard-queue"], "/queue/url"),
    (["aws.region=Europe"], "/aws/region"),
    (["logging.format=xml"], "/logging/format"),
    (["telemetry.otlpProtocol=http/json"], "/telemetry/otlpProtocol"),
    (["sesWorker.waitTimeSeconds=30"], "/sesWorker/waitTimeSeconds"),
    (["mailgunWorker.concurrency=0"], "/mailgunWorker/concurrency"),
    (["api.maxRequestBytes=100"], "/api/maxRequestBytes"),
    (["keda.authentication.type=magic"], "/keda/authentication/type"),
    (["keda.authentication.identityOwner=pod"], "/keda/authentication/identityOwner"),
    (["serviceAccount.roleArn=limbo-role"], "/serviceAccount/roleArn"),
    (["api.ingress.hosts[0].paths[0].pathType=Fuzzy"], "pathType"),
    (["api.image.digest=latest"], "/api/image/digest"),
    # Checks the templates make, beyond types.
    (
        ["sesWorker.terminationGracePeriodSeconds=20"],
        "terminationGracePeriodSeconds (20) must exceed shutdownGrace (25)",
    ),
    (["api.terminationGracePeriodSeconds=20"], "api.terminationGracePeriodSeconds must exceed"),
    (["keda.authentication.type=secret"], "keda.authentication.type=secret needs aws.credentials"),
    (["aws.credentials.accessKeyId=AKIA"], "aws.credentials.secretAccessKey is required"),
    (["serviceAccount.create=false"], "serviceAccount.name is required"),
]


@pytest.mark.parametrize(("sets", "message"), REFUSED, ids=[s[0][0] for s in REFUSED])
def test_bad_values_are_refused_with_a_message_naming_them(sets: list[str], message: str) -> None:
    error = render_error([DEFAULT], sets)
    assert message in error, error


def all_keys(values: Any, prefix: str = "") -> set[str]:
    if not isinstance(values, dict):
        return set()
    keys = set()
    for key, value in values.items():
        path = f"{prefix}.{key}" if prefix else key
        keys.add(path)
        # Maps of free keys (labels, env, annotations) and Kubernetes objects stop here.
        if key not in {
            "env",
            "podAnnotations",
            "podLabels",
            "annotations",
            "labels",
            "commonLabels",
            "nodeSelector",
            "affinity",
            "resources",
            "resourceAttributes",
            "behavior",
            "podSecurityContext",
            "securityContext",
        }:
            keys |= all_keys(value, path)
    return keys


def schema_keys(schema: dict[str, Any], prefix: str = "") -> set[str]:
    keys = set()
    for key, sub in schema.get("properties", {}).items():
        path = f"{prefix}.{key}" if prefix else key
        keys.add(path)
        keys |= schema_keys(sub, path)
    return keys


def test_schema_and_values_yaml_describe_the_same_keys() -> None:
    values = yaml.safe_load((CHART / "values.yaml").read_text())
    schema = json.loads((CHART / "values.schema.json").read_text())
    assert schema["additionalProperties"] is False
    missing = all_keys(values) - schema_keys(schema)
    assert not missing, f"in values.yaml but not in the schema: {sorted(missing)}"


def test_every_value_in_values_yaml_is_commented() -> None:
    """Each key has a comment right above it, or sits inside a commented block below the
    top level (api.image: repository, tag...; a Kubernetes object such as resources)."""
    lines = (CHART / "values.yaml").read_text().splitlines()
    commented: list[tuple[int, bool]] = []  # (indent, documented) of the open ancestor keys
    uncommented = []
    for number, line in enumerate(lines):
        match = re.match(r"^(\s*)(?:- )?([A-Za-z][\w.-]*):", line)
        if not match or line.lstrip().startswith("#"):
            continue
        indent = len(match.group(1))
        while commented and commented[-1][0] >= indent:
            commented.pop()
        above = lines[number - 1].strip() if number else ""
        # Top-level and second-level keys carry their own comment; deeper ones may share
        # the comment of a block below the top level (api.image: repository, tag...).
        documented = above.startswith("#") or (
            len(commented) >= 2 and any(doc for _, doc in commented[1:])
        )
        if not documented:
            uncommented.append(f"line {number + 1}: {line.strip()}")
        commented.append((indent, above.startswith("#")))
    assert not uncommented, uncommented
