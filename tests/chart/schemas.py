"""Strict schema validation of rendered objects: unknown fields are errors everywhere.

- Kubernetes' own kinds: the kubernetes-validate package's strict schemas, per version.
- KEDA's kinds: the openAPIV3Schema of KEDA's published CRDs, made strict the way
  kubeconform's openapi2jsonschema does (additionalProperties: false wherever properties
  are listed), so a misspelt field fails here instead of being pruned by the API server.
- ServiceMonitor: the Prometheus Operator's schema as the cloudcoil models carry it, made
  strict the same way.
"""

from __future__ import annotations

import copy
import functools
from pathlib import Path
from typing import Any

import jsonschema
import kubernetes_validate
import yaml

Schema = dict[str, Any]


def strict(schema: Any) -> Any:
    """Forbid unknown properties and translate the Kubernetes OpenAPI extensions."""
    if isinstance(schema, list):
        return [strict(item) for item in schema]
    if not isinstance(schema, dict):
        return schema
    node = {key: strict(value) for key, value in schema.items()}
    if node.pop("x-kubernetes-int-or-string", False):
        node.pop("type", None)
        node["anyOf"] = [{"type": "integer"}, {"type": "string"}]
    if node.pop("nullable", False) and isinstance(node.get("type"), str):
        node["type"] = [node["type"], "null"]
    preserves = node.pop("x-kubernetes-preserve-unknown-fields", False)
    if "properties" in node and "additionalProperties" not in node and not preserves:
        node["additionalProperties"] = False
    return node


@functools.cache
def keda_schemas(crds: Path) -> dict[str, Schema]:
    """kind -> strict schema, from a file of CustomResourceDefinitions."""
    schemas: dict[str, Schema] = {}
    # libyaml when there: the CRD file is 700 kB, which pure-Python YAML takes seconds over.
    loader = getattr(yaml, "CSafeLoader", yaml.SafeLoader)
    for document in yaml.load_all(crds.read_text(), Loader=loader):
        if not document or document.get("kind") != "CustomResourceDefinition":
            continue
        group = document["spec"]["group"]
        for version in document["spec"]["versions"]:
            kind = document["spec"]["names"]["kind"]
            schema = strict(version["schema"]["openAPIV3Schema"])
            # metadata is checked by the API server, not the CRD: accept ObjectMeta's shape.
            schema["properties"]["metadata"] = {"type": "object"}
            schemas[f"{group}/{version['name']}/{kind}"] = schema
    return schemas


def validate_crd_object(obj: dict[str, Any], schemas: dict[str, Schema]) -> None:
    key = f"{obj['apiVersion']}/{obj['kind']}"
    assert key in schemas, f"no CRD schema for {key}"
    validator = jsonschema.Draft7Validator(schemas[key])
    errors = sorted(validator.iter_errors(obj), key=lambda e: list(e.absolute_path))
    assert not errors, "\n".join(
        f"{obj['kind']} {obj['metadata']['name']}: {'/'.join(map(str, e.absolute_path))}: "
        f"{e.message}"
        for e in errors
    )


@functools.lru_cache(maxsize=1)
def service_monitor_schema() -> Schema:
    from cloudcoil.models.prometheus_operator.v1 import ServiceMonitor

    schema = strict(ServiceMonitor.model_json_schema(by_alias=True))
    # The models give metadata and apiVersion/kind their own shapes; keep the spec strict.
    schema["properties"]["metadata"] = {"type": "object"}
    return schema  # type: ignore[no-any-return]


def validate_service_monitor(obj: dict[str, Any]) -> None:
    assert obj["apiVersion"] == "monitoring.coreos.com/v1"
    validator = jsonschema.Draft202012Validator(service_monitor_schema())
    errors = list(validator.iter_errors(copy.deepcopy(obj)))
    assert not errors, "\n".join(
        f"ServiceMonitor: {'/'.join(map(str, e.absolute_path))}: {e.message}" for e in errors
    )


def validate_kubernetes_object(obj: dict[str, Any], version: str) -> None:
    try:
        kubernetes_validate.validate(obj, version, strict=True)
    except kubernetes_validate.ValidationError as error:
        path = "/".join(str(p) for p in error.absolute_path)
        raise AssertionError(
            f"{obj['kind']} {obj['metadata']['name']} (Kubernetes {version}): "
            f"{path}: {error.message}"
        ) from None


@functools.lru_cache(maxsize=1)
def prometheus_rule_schema() -> Schema:
    from cloudcoil.models.prometheus_operator.v1 import PrometheusRule

    schema = strict(PrometheusRule.model_json_schema(by_alias=True))
    schema["properties"]["metadata"] = {"type": "object"}
    return schema  # type: ignore[no-any-return]


def validate_prometheus_rule(obj: dict[str, Any]) -> None:
    assert obj["apiVersion"] == "monitoring.coreos.com/v1"
    validator = jsonschema.Draft202012Validator(prometheus_rule_schema())
    errors = list(validator.iter_errors(copy.deepcopy(obj)))
    assert not errors, "\n".join(
        f"PrometheusRule: {'/'.join(map(str, e.absolute_path))}: {e.message}" for e in errors
    )
