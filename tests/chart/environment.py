"""A container's environment as the kubelet would build it from the rendered objects."""

from __future__ import annotations

import base64
import re
from typing import Any

from .conftest import NAMESPACE, Object, Rendered

# What a Secret made outside the chart (existingSecret) would hold: any non-empty value.
EXISTING_SECRET_VALUE = "value-from-an-existing-secret"
_REFERENCE = re.compile(r"\$\(([A-Za-z_][A-Za-z0-9_]*)\)")
_LABEL_FIELD = re.compile(r"metadata\.labels\['([^']+)'\]")


def _secret_value(rendered: Rendered, name: str, key: str) -> str:
    secret = rendered.find("Secret", name)
    if secret is None:
        return EXISTING_SECRET_VALUE
    assert key in secret.get("data", {}), f"Secret {name} has no key {key}"
    return base64.b64decode(secret["data"][key]).decode()


def _field(pod: Object, path: str) -> str:
    label = _LABEL_FIELD.fullmatch(path)
    if label:
        labels: dict[str, str] = pod["metadata"]["labels"]
        assert label.group(1) in labels, f"the pod has no label {label.group(1)}"
        return labels[label.group(1)]
    known = {
        "metadata.namespace": NAMESPACE,
        "metadata.name": "pod-0",
        "spec.nodeName": "node-0",
        "status.podIP": "10.0.0.1",
    }
    assert path in known, f"unexpected fieldRef {path}"
    return known[path]


def container_env(rendered: Rendered, pod_template: Object, container: Object) -> dict[str, str]:
    """envFrom first, then env in order, with $(VAR) expanded as Kubernetes does."""
    env: dict[str, str] = {}
    for origin in container.get("envFrom", []):
        if "configMapRef" in origin:
            config = rendered.get("ConfigMap", origin["configMapRef"]["name"])
            env.update(config.get("data", {}))
        if "secretRef" in origin:
            secret = rendered.find("Secret", origin["secretRef"]["name"])
            if secret is not None:
                env.update({k: base64.b64decode(v).decode() for k, v in secret["data"].items()})
    for variable in container.get("env", []):
        name = variable["name"]
        if "value" in variable:
            env[name] = _REFERENCE.sub(
                lambda m: env.get(m.group(1), m.group(0)), str(variable["value"])
            )
            continue
        source: dict[str, Any] = variable["valueFrom"]
        if "secretKeyRef" in source:
            ref = source["secretKeyRef"]
            env[name] = _secret_value(rendered, ref["name"], ref["key"])
        elif "configMapKeyRef" in source:
            ref = source["configMapKeyRef"]
            env[name] = rendered.get("ConfigMap", ref["name"])["data"][ref["key"]]
        elif "fieldRef" in source:
            env[name] = _field(pod_template, source["fieldRef"]["fieldPath"])
        else:
            raise AssertionError(f"unexpected valueFrom in {variable}")
    return env
