"""What the chart renders, read as a specification of how limbo runs on Kubernetes."""

from __future__ import annotations

import base64
import re
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path
from typing import Any
from urllib.parse import urlparse

import pytest
import yaml
from pydantic import AliasChoices
from pydantic_settings import BaseSettings
from starlette.testclient import TestClient

from limbo_api.app import create_app
from limbo_api.settings import ApiSettings
from limbo_devtools.local_aws import LocalAws
from limbo_events.settings import EventsSettings
from limbo_mailgun_worker.provider import MailgunSettings
from limbo_ses_worker.provider import SesSettings
from limbo_shared.aws import make_client
from limbo_shared.config import load_settings
from limbo_shared.queue import SqsQueue
from limbo_shared.scheduler import SchedulerSettings
from limbo_shared.worker import WorkerSettings
from limbo_shared.worker.server import health_app
from limbo_webhooks.settings import WebhookSettings

# Prometheus metrics register once per process: share the API tests' instance.
from ..api.conftest import _METRICS as API_METRICS
from .conftest import (
    CHART,
    CI_VALUES,
    NAMESPACE,
    RELEASE,
    Object,
    Rendered,
    helm,
    render,
    render_error,
    rendered,
    values_id,
)
from .environment import EXISTING_SECRET_VALUE, container_env

CI = CHART / "ci"
DEFAULT = CI / "default-values.yaml"
KEDA_OFF = CI / "keda-off-values.yaml"
INGRESS_TLS = CI / "ingress-tls-values.yaml"
EXISTING_SECRETS = CI / "existing-secrets-values.yaml"
LOCAL = CI / "local-values.yaml"
LOCAL_KEDA = CI / "local-keda-values.yaml"
WEBHOOKS = CI / "webhooks-values.yaml"
ROUTING = CI / "routing-values.yaml"
WITH_KEDA = [p for p in CI_VALUES if p not in (KEDA_OFF, LOCAL)]

# The settings classes each service builds from its environment at start.
SETTINGS: dict[str, tuple[type[BaseSettings], ...]] = {
    "api": (ApiSettings,),
    "ses-worker": (WorkerSettings, SesSettings),
    "mailgun-worker": (WorkerSettings, MailgunSettings),
    "scheduler": (SchedulerSettings,),
    "webhooks": (WebhookSettings,),
    "events": (EventsSettings,),
}
SERVICES = tuple(SETTINGS)
# Scaled by KEDA on their queue's depth; the scheduler runs a fixed replica count.
WORKERS = ("ses-worker", "mailgun-worker", "webhooks", "events")
# Metadata keys KEDA 2.20's aws-sqs-queue scaler reads (pkg/scalers/aws_sqs_queue_scaler.go,
# awsSqsQueueMetadata, plus queueURLFromEnv resolved by KEDA's generic *FromEnv handling and
# the deprecated identityOwner read by its AWS authorization helper).
KEDA_SQS_METADATA = {
    "queueURL",
    "queueURLFromEnv",
    "queueLength",
    "activationQueueLength",
    "awsRegion",
    "awsEndpoint",
    "scaleOnInFlight",
    "scaleOnDelayed",
    "identityOwner",
}
KEDA_AWS_SECRET_PARAMETERS = {
    "awsAccessKeyID",
    "awsSecretAccessKey",
    "awsSessionToken",
    "awsRoleArn",
}
# Set by the chart for something other than limbo's own settings: OpenTelemetry's SDK,
# the downward API feeding it, boto3's credential chain.
NOT_LIMBO_SETTINGS = re.compile(r"^(OTEL_|K8S_|AWS_ACCESS_KEY_ID$|AWS_SECRET_ACCESS_KEY$)")


def env_names(classes: tuple[type[BaseSettings], ...]) -> set[str]:
    """The variables the classes read: field names, or their aliases where they have one
    (limbo-events reads its queue from EVENTS_QUEUE)."""
    names = set()
    for cls in classes:
        for name, info in cls.model_fields.items():
            alias = info.validation_alias
            if isinstance(alias, AliasChoices):
                names |= {str(choice).upper() for choice in alias.choices}
            else:
                names.add(name.upper())
    return names


def component(obj: Object) -> str:
    return str(obj["metadata"]["labels"]["app.kubernetes.io/component"])


def service_deployments(r: Rendered) -> dict[str, Object]:
    return {component(d): d for d in r.of_kind("Deployment") if component(d) in SERVICES}


def main_container(deployment: Object) -> Object:
    containers: list[Object] = deployment["spec"]["template"]["spec"]["containers"]
    assert len(containers) == 1
    return containers[0]


def env_of(r: Rendered, deployment: Object) -> dict[str, str]:
    return container_env(r, deployment["spec"]["template"], main_container(deployment))


def values_of(path: Path) -> dict[str, Any]:
    loaded: dict[str, Any] = yaml.safe_load(path.read_text())
    return loaded


# --- KEDA -------------------------------------------------------------------------------


@pytest.mark.parametrize("values", WITH_KEDA, ids=values_id)
def test_each_worker_has_a_scaled_object_targeting_it_and_no_fixed_replicas(values: Path) -> None:
    r = rendered(values)
    workers = {name: d for name, d in service_deployments(r).items() if name in WORKERS}
    assert workers
    targets = {}
    for scaled in r.of_kind("ScaledObject"):
        target = scaled["spec"]["scaleTargetRef"]
        assert target.get("kind", "Deployment") == "Deployment"
        assert target.get("apiVersion", "apps/v1") == "apps/v1"
        deployment = r.get("Deployment", target["name"])
        targets[component(deployment)] = scaled
        # Helm and KEDA must not both own the replica count.
        assert "replicas" not in deployment["spec"]
        assert scaled["spec"]["minReplicaCount"] <= scaled["spec"]["maxReplicaCount"]
    assert set(targets) == set(workers)


@pytest.mark.parametrize("values", WITH_KEDA, ids=values_id)
def test_triggers_use_only_metadata_the_sqs_scaler_reads(values: Path) -> None:
    r = rendered(values)
    for scaled in r.of_kind("ScaledObject"):
        deployment = r.get("Deployment", scaled["spec"]["scaleTargetRef"]["name"])
        env = env_of(r, deployment)
        triggers = scaled["spec"]["triggers"]
        # KEDA watches the queues the worker consumes: a mail worker (the one with a
        # BULK_CONCURRENCY) reads BULK_QUEUE too; the events and webhook workers one queue.
        consumed = env["EVENTS_QUEUE"] if component(deployment) == "events" else env["QUEUE"]
        mail = "BULK_CONCURRENCY" in env and "BULK_QUEUE" in env
        queues = [consumed, *([env["BULK_QUEUE"]] if mail else [])]
        assert [t["metadata"]["queueURL"] for t in triggers] == queues
        for trigger in triggers:
            assert trigger["type"] == "aws-sqs-queue"
            metadata: dict[str, Any] = trigger["metadata"]
            assert set(metadata) <= KEDA_SQS_METADATA, set(metadata) - KEDA_SQS_METADATA
            assert all(isinstance(v, str) for v in metadata.values()), "KEDA reads strings only"
            # In the worker's region and endpoint.
            assert metadata["awsRegion"] == env["REGION"]
            assert metadata.get("awsEndpoint") == env.get("AWS_ENDPOINT_URL")
            # In-flight messages count, so a pod still sending is not scaled away (KEDA #5948).
            assert metadata["scaleOnInFlight"] == "true"
            int(metadata["queueLength"]), int(metadata["activationQueueLength"])
            auth = r.get("TriggerAuthentication", trigger["authenticationRef"]["name"])
            assert auth["metadata"]["name"] == scaled["metadata"]["name"]


@pytest.mark.parametrize("values", WITH_KEDA, ids=values_id)
def test_trigger_authentication_is_one_of_the_aws_forms_keda_accepts(values: Path) -> None:
    r = rendered(values)
    for auth in r.of_kind("TriggerAuthentication"):
        spec = auth["spec"]
        if "podIdentity" in spec:
            identity = spec["podIdentity"]
            assert identity["provider"] == "aws"
            # roleArn and identityOwner are mutually exclusive.
            assert ("roleArn" in identity) != ("identityOwner" in identity)
            assert identity.get("identityOwner", "workload") in ("workload", "keda")
        else:
            refs = spec["secretTargetRef"]
            assert {ref["parameter"] for ref in refs} <= KEDA_AWS_SECRET_PARAMETERS
            assert {"awsAccessKeyID", "awsSecretAccessKey"} <= {ref["parameter"] for ref in refs}
            for ref in refs:
                secret = r.find("Secret", ref["name"])
                assert secret is None or ref["key"] in secret["data"]


def test_the_two_authentication_modes_follow_the_values() -> None:
    irsa = rendered(DEFAULT).of_kind("TriggerAuthentication")[0]["spec"]
    assert irsa == {"podIdentity": {"provider": "aws", "identityOwner": "workload"}}
    assumed = rendered(INGRESS_TLS).of_kind("TriggerAuthentication")[0]["spec"]
    assert assumed == {
        "podIdentity": {"provider": "aws", "roleArn": "arn:aws:iam::123456789012:role/keda-limbo"}
    }
    operator = rendered(DEFAULT, sets=["keda.authentication.identityOwner=keda"])
    assert operator.of_kind("TriggerAuthentication")[0]["spec"]["podIdentity"] == {
        "provider": "aws",
        "identityOwner": "keda",
    }
    keys = rendered(EXISTING_SECRETS).of_kind("TriggerAuthentication")[0]["spec"]
    assert {ref["name"] for ref in keys["secretTargetRef"]} == {"limbo-aws"}


@pytest.mark.parametrize("values", [KEDA_OFF, LOCAL], ids=values_id)
def test_without_keda_workers_run_fixed_replicas(values: Path) -> None:
    r = rendered(values)
    assert not r.of_kind("ScaledObject") and not r.of_kind("TriggerAuthentication")
    expected = values_of(values)
    for name, deployment in service_deployments(r).items():
        if name == "api":
            continue
        key = {"ses-worker": "sesWorker", "mailgun-worker": "mailgunWorker"}.get(name, name)
        default = values_of(CHART / "values.yaml")[key]["replicas"]
        assert deployment["spec"]["replicas"] == expected.get(key, {}).get("replicas", default)


def test_scaled_object_carries_the_configured_scaling_behaviour() -> None:
    scaled = rendered(INGRESS_TLS).get("ScaledObject", "limbo-ses-worker")["spec"]
    assert (scaled["minReplicaCount"], scaled["maxReplicaCount"]) == (1, 30)
    assert (scaled["pollingInterval"], scaled["cooldownPeriod"]) == (10, 120)
    assert scaled["triggers"][0]["metadata"]["queueLength"] == "20"
    assert scaled["triggers"][0]["metadata"]["activationQueueLength"] == "2"
    behavior = scaled["advanced"]["horizontalPodAutoscalerConfig"]["behavior"]
    assert behavior["scaleDown"]["stabilizationWindowSeconds"] == 600
    assert behavior["scaleUp"]["policies"] == [{"type": "Pods", "value": 4, "periodSeconds": 15}]
    default = rendered(DEFAULT).get("ScaledObject", "limbo-ses-worker")["spec"]
    assert default["minReplicaCount"] == 0, "scale to zero by default"


# --- Environment --------------------------------------------------------------------------


@pytest.mark.parametrize("values", CI_VALUES, ids=values_id)
def test_every_setting_a_service_reads_is_set_and_accepted(
    values: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    """Each service's own settings classes load from the environment the chart gives it."""
    r = rendered(values)
    deployments = service_deployments(r)
    assert "api" in deployments and len(deployments) >= 2
    for name, deployment in deployments.items():
        env = env_of(r, deployment)
        for variable in env_names(tuple(c for cs in SETTINGS.values() for c in cs)):
            monkeypatch.delenv(variable, raising=False)
        for key, value in env.items():
            monkeypatch.setenv(key, value)
        for cls in SETTINGS[name]:
            settings = load_settings(cls)  # raises ConfigError naming what is missing
            assert settings is not None
        # Required settings are set by the chart, not left to a default.
        required = {
            field.upper()
            for cls in SETTINGS[name]
            for field, info in cls.model_fields.items()
            if info.is_required()
        }
        assert required <= set(env), required - set(env)


@pytest.mark.parametrize("values", CI_VALUES, ids=values_id)
def test_the_chart_sets_no_variable_its_service_does_not_read(values: Path) -> None:
    """A misspelt variable (SES_SOURCE for SESSOURCE) would be silently ignored."""
    r = rendered(values)
    extra = {
        key
        for block in values_of(values).values()
        if isinstance(block, dict)
        for key in block.get("env", {}) or {}
    }
    shared = r.get("ConfigMap", RELEASE)["data"]
    read_by_any = env_names(tuple(c for cs in SETTINGS.values() for c in cs))
    for key in shared:
        assert key in read_by_any or NOT_LIMBO_SETTINGS.match(key), key
    for name, deployment in service_deployments(r).items():
        own = set(env_of(r, deployment)) - set(shared) - extra
        unread = {
            key for key in own - env_names(SETTINGS[name]) if not NOT_LIMBO_SETTINGS.match(key)
        }
        assert not unread, f"{name} is given {unread}, which it never reads"


def test_a_service_refuses_the_chart_defaults_until_the_queue_is_set(
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    """The check above can fail: with values.yaml alone the API has no queue to use."""
    from limbo_shared.config import ConfigError

    r = Rendered(render())
    env = env_of(r, service_deployments(r)["api"])
    assert "QUEUE" not in env
    for variable in env_names(SETTINGS["api"]):
        monkeypatch.delenv(variable, raising=False)
    for key, value in env.items():
        monkeypatch.setenv(key, value)
    with pytest.raises(ConfigError, match="QUEUE is not set"):
        load_settings(ApiSettings)


def test_settings_land_in_the_variables_the_services_read() -> None:
    r = rendered(KEDA_OFF)
    mailgun = env_of(r, r.get("Deployment", "limbo-mailgun-worker"))
    assert mailgun["MAILGUN"] == "key-example"
    assert mailgun["DOMAIN"] == "mg.example.com"
    assert mailgun["MAILGUN_API_URL"] == "https://api.eu.mailgun.net"
    assert (mailgun["CONCURRENCY"], mailgun["SHUTDOWN_GRACE"]) == ("128", "50")
    assert (mailgun["AWS_ACCESS_KEY_ID"], mailgun["AWS_SECRET_ACCESS_KEY"]) == (
        "AKIAEXAMPLEEXAMPLE00",
        "example-secret-access-key",
    )
    ses = env_of(r, r.get("Deployment", "limbo-ses-worker"))
    assert ses["SES_CONFIGURATION_SET"] == "limbo-events"
    # Deprecated: SES sends the client's From, within the sender domains below.
    assert "SESSOURCE" not in ses
    api = env_of(r, r.get("Deployment", "limbo-api"))
    assert api["SENDER_DOMAINS"] == ses["SENDER_DOMAINS"] == "example.com,*.example.com"
    assert api["KEY_SENDER_DOMAINS"] == "billing=billing.example.org"
    assert api["MAX_CONCURRENT_REQUESTS"] == "512"
    assert api["MAX_REQUEST_BYTES"] == "14680064", "no 1.4680064e+07 from a float"
    assert api["MAX_ATTACHMENT_BYTES"] == "10000000"
    assert api["PAYLOAD_BUCKET"] == "limbo-payloads-example"
    scheduler = env_of(r, r.get("Deployment", "limbo-scheduler"))
    schedule_queue = "https://sqs.us-east-1.amazonaws.com/123456789012/limbo-schedule"
    assert api["SCHEDULE_QUEUE"] == scheduler["SCHEDULE_QUEUE"] == schedule_queue
    assert scheduler["QUEUE"] == api["QUEUE"]
    assert api["QUEUE"] == "https://sqs.us-east-1.amazonaws.com/123456789012/limbo.fifo"


def test_existing_secrets_are_read_and_nothing_secret_is_rendered() -> None:
    r = rendered(EXISTING_SECRETS)
    assert not r.of_kind("Secret")
    mailgun = main_container(r.get("Deployment", "limbo-mailgun-worker"))
    refs = {
        v["name"]: v["valueFrom"]["secretKeyRef"]
        for v in mailgun["env"]
        if "secretKeyRef" in v.get("valueFrom", {})
    }
    assert refs["MAILGUN"] == {"name": "limbo-mailgun", "key": "api-key"}
    assert refs["AWS_ACCESS_KEY_ID"]["name"] == "limbo-aws"
    api = main_container(r.get("Deployment", "limbo-api"))
    api_refs = {
        v["name"]: v["valueFrom"]["secretKeyRef"]
        for v in api["env"]
        if "secretKeyRef" in v.get("valueFrom", {})
    }
    assert "API_KEYS" not in api_refs
    # A mounted file (not subPath): the kubelet updates it and the API re-reads it.
    mount = next(m for m in api["volumeMounts"] if m["name"] == "api-keys")
    assert "subPath" not in mount
    file_env = next(v["value"] for v in api["env"] if v["name"] == "API_KEYS_FILE")
    assert file_env == f"{mount['mountPath']}/API_KEYS"
    [volume] = [
        v
        for v in r.get("Deployment", "limbo-api")["spec"]["template"]["spec"]["volumes"]
        if v["name"] == "api-keys"
    ]
    assert volume["secret"] == {
        "secretName": "limbo-api-keys",
        "items": [{"key": "API_KEYS", "path": "API_KEYS"}],
    }
    assert (
        env_of(r, r.get("Deployment", "limbo-mailgun-worker"))["MAILGUN"] == EXISTING_SECRET_VALUE
    )
    # No plain-text key anywhere in what Helm stores.
    assert "key-" not in yaml.safe_dump_all(r.objects)


def test_tracking_and_api_key_settings_reach_the_services() -> None:
    r = rendered(EXISTING_SECRETS, sets=["auth.disabled=true"])
    api = env_of(r, r.get("Deployment", "limbo-api"))
    assert api["STATUS_TABLE"] == "limbo-status"
    assert api["AUTH"] == "disabled"
    worker = env_of(r, r.get("Deployment", "limbo-mailgun-worker"))
    assert worker["STATUS_TABLE"] == "limbo-status"
    bare = Rendered(render([]))
    plain = env_of(bare, bare.get("Deployment", "limbo-api"))
    assert not {"STATUS_TABLE", "AUTH", "API_KEYS"} & set(plain)


@pytest.mark.parametrize("values", CI_VALUES, ids=values_id)
def test_opentelemetry_is_configured_with_standard_variables(values: Path) -> None:
    r = rendered(values)
    for name, deployment in service_deployments(r).items():
        env = env_of(r, deployment)
        assert env["OTEL_SERVICE_NAME"] == name  # from the component label, downward API
        attributes = dict(item.split("=", 1) for item in env["OTEL_RESOURCE_ATTRIBUTES"].split(","))
        assert attributes["service.namespace"] == "limbo"
        assert (
            attributes["service.version"]
            == yaml.safe_load((CHART / "Chart.yaml").read_text())["appVersion"]
        )
        assert attributes["k8s.namespace.name"] == NAMESPACE
        assert "$(" not in env["OTEL_RESOURCE_ATTRIBUTES"], "every reference resolves"
    tls = rendered(INGRESS_TLS)
    env = env_of(tls, tls.get("Deployment", "limbo-api"))
    assert env["OTEL_EXPORTER_OTLP_ENDPOINT"] == "http://otel-collector.observability:4317"
    assert env["OTEL_EXPORTER_OTLP_PROTOCOL"] == "grpc"
    assert env["OTEL_TRACES_SAMPLER_ARG"] == "0.25"
    assert "deployment.environment.name=production" in env["OTEL_RESOURCE_ATTRIBUTES"]
    assert "OTEL_EXPORTER_OTLP_ENDPOINT" not in env_of(
        rendered(DEFAULT), rendered(DEFAULT).get("Deployment", "limbo-api")
    )


# --- Probes -------------------------------------------------------------------------------


def probes(container: Object) -> list[Object]:
    return [
        container[k] for k in ("livenessProbe", "readinessProbe", "startupProbe") if k in container
    ]


def test_probes_hit_the_real_endpoints_of_the_services(aws: LocalAws) -> None:
    r = rendered(
        DEFAULT,
        sets=[
            "auth.disabled=true",
            "mailgunWorker.enabled=true",
            "mailgunWorker.domain=d.example",
            "mailgunWorker.apiKey=k",
        ],
    )
    deployments = service_deployments(r)
    client = make_client("sqs", region=aws.region, endpoint_url=aws.endpoint)
    queue = SqsQueue(client, aws.queue_url, ThreadPoolExecutor(2))
    settings = ApiSettings(
        queue=aws.queue_url, region=aws.region, aws_endpoint_url=aws.endpoint, auth="disabled"
    )
    apps = {
        "api": create_app(settings, queue, API_METRICS),
        "ses-worker": health_app(lambda: True),
        "mailgun-worker": health_app(lambda: True),
        "scheduler": health_app(lambda: True),
    }
    for name, deployment in deployments.items():
        container = main_container(deployment)
        ports = {p["name"]: p["containerPort"] for p in container["ports"]}
        env = env_of(r, deployment)
        found = probes(container)
        assert {"livenessProbe", "readinessProbe"} <= set(container)
        with TestClient(apps[name]) as http:
            for probe in found:
                # The probe's port is the one the service listens on (PORT).
                assert str(ports[probe["httpGet"]["port"]]) == env["PORT"]
                response = http.get(probe["httpGet"]["path"])
                assert response.status_code == 200, (name, probe, response.text)
        # Liveness must not depend on SQS: an SQS outage must not restart every pod.
        assert container["livenessProbe"]["httpGet"]["path"] == "/health"
        assert container["readinessProbe"]["httpGet"]["path"] == "/ready"


# --- Security -----------------------------------------------------------------------------


@pytest.mark.parametrize(
    "values", [None, *CI_VALUES], ids=["chart-defaults", *(values_id(p) for p in CI_VALUES)]
)
def test_no_container_can_run_as_root_or_write_outside_tmp(values: Path | None) -> None:
    r = Rendered(render([] if values is None else [values]))
    for owner, pod in r.pod_specs():
        where = f"{owner['kind']} {owner['metadata']['name']}"
        pod_context = pod.get("securityContext", {})
        assert not pod.get("hostNetwork") and not pod.get("hostPID") and not pod.get("hostIPC")
        volumes = {v["name"]: v for v in pod.get("volumes", [])}
        for container in pod["containers"] + pod.get("initContainers", []):
            context = container.get("securityContext", {})
            merged = {**pod_context, **context}
            assert merged.get("runAsNonRoot") is True, where
            assert merged.get("runAsUser", 1) != 0, where
            assert context.get("allowPrivilegeEscalation") is False, where
            assert context.get("privileged") is not True, where
            assert context.get("readOnlyRootFilesystem") is True, where
            assert "ALL" in context.get("capabilities", {}).get("drop", []), where
            assert not context.get("capabilities", {}).get("add"), where
            assert merged.get("seccompProfile", {}).get("type") == "RuntimeDefault", where
            mounts = {m["mountPath"]: m["name"] for m in container.get("volumeMounts", [])}
            assert "/tmp" in mounts and "emptyDir" in volumes[mounts["/tmp"]], where
            assert container.get("resources", {}).get("limits", {}).get("memory"), where
            assert container.get("resources", {}).get("requests"), where


def test_the_security_check_above_can_fail() -> None:
    r = Rendered(render([DEFAULT], sets=["securityContext.readOnlyRootFilesystem=false"]))
    contexts = [c["securityContext"] for _, pod in r.pod_specs() for c in pod["containers"]]
    assert any(c["readOnlyRootFilesystem"] is False for c in contexts)


@pytest.mark.parametrize("values", CI_VALUES, ids=values_id)
def test_workers_get_more_time_to_stop_than_their_drain_takes(values: Path) -> None:
    r = rendered(values)
    for name, deployment in service_deployments(r).items():
        grace = deployment["spec"]["template"]["spec"]["terminationGracePeriodSeconds"]
        if name == "api":
            sleep = int(main_container(deployment)["lifecycle"]["preStop"]["exec"]["command"][-1])
            assert grace > sleep + 20  # uvicorn's timeout_graceful_shutdown
        elif name in WORKERS:
            assert grace > float(env_of(r, deployment)["SHUTDOWN_GRACE"])


# --- Names, labels, selectors -------------------------------------------------------------


def test_names_carry_the_release_so_two_releases_never_collide() -> None:
    first = Rendered(render([LOCAL_KEDA], release="alpha"))
    second = Rendered(render([LOCAL_KEDA], release="beta"))
    names_a = {(o["kind"], o["metadata"]["name"]) for o in first.objects}
    names_b = {(o["kind"], o["metadata"]["name"]) for o in second.objects}
    assert not names_a & names_b
    assert all(name.startswith("alpha-") for _, name in names_a)
    # References follow the names: every Service the pods talk to exists in their release.
    env = env_of(first, first.get("Deployment", "alpha-limbo-api"))
    assert urlparse(env["QUEUE"]).hostname == "alpha-limbo-moto"


@pytest.mark.parametrize("values", CI_VALUES, ids=values_id)
def test_selectors_pick_exactly_their_own_pods(values: Path) -> None:
    r = rendered(values)
    pods = {
        d["metadata"]["name"]: d["spec"]["template"]["metadata"]["labels"]
        for d in r.of_kind("Deployment")
    }

    def matching(selector: dict[str, str]) -> list[str]:
        return [
            n for n, labels in pods.items() if all(labels.get(k) == v for k, v in selector.items())
        ]

    for deployment in r.of_kind("Deployment"):
        selector = deployment["spec"]["selector"]["matchLabels"]
        # Only what never changes over a release's life: name, instance, component.
        assert set(selector) == {
            "app.kubernetes.io/name",
            "app.kubernetes.io/instance",
            "app.kubernetes.io/component",
        }
        assert matching(selector) == [deployment["metadata"]["name"]]
        labels = deployment["metadata"]["labels"]
        assert labels["app.kubernetes.io/managed-by"] == "Helm"
        assert labels["helm.sh/chart"].startswith("limbo-")
    for service in r.of_kind("Service"):
        assert len(matching(service["spec"]["selector"])) == 1, service["metadata"]["name"]
        target = r.get("Deployment", matching(service["spec"]["selector"])[0])
        names = {
            p["name"]
            for c in target["spec"]["template"]["spec"]["containers"]
            for p in c.get("ports", [])
        }
        assert {p["targetPort"] for p in service["spec"]["ports"]} <= names
    for budget in r.of_kind("PodDisruptionBudget"):
        assert matching(budget["spec"]["selector"]["matchLabels"]) == ["limbo-api"]
    for policy in r.of_kind("NetworkPolicy"):
        assert len(matching(policy["spec"]["podSelector"]["matchLabels"])) == 1


def test_service_monitor_scrapes_the_api_and_the_workers() -> None:
    r = rendered(INGRESS_TLS)
    (monitor,) = r.of_kind("ServiceMonitor")
    assert monitor["metadata"]["labels"]["release"] == "prometheus"
    selector = monitor["spec"]["selector"]
    chosen = [
        s
        for s in r.of_kind("Service")
        if all(s["metadata"]["labels"].get(k) == v for k, v in selector["matchLabels"].items())
        and all(
            s["metadata"]["labels"].get(e["key"]) in e["values"]
            for e in selector["matchExpressions"]
        )
    ]
    assert {component(s) for s in chosen} == {"api", "ses-worker"}
    (endpoint,) = monitor["spec"]["endpoints"]
    assert endpoint["path"] == "/metrics"
    assert all(endpoint["port"] in {p["name"] for p in s["spec"]["ports"]} for s in chosen)


def test_network_policies_admit_only_the_service_ports() -> None:
    r = rendered(INGRESS_TLS)
    api = r.get("NetworkPolicy", "limbo-api")["spec"]
    assert api["policyTypes"] == ["Ingress", "Egress"]
    assert api["ingress"][0]["ports"] == [{"port": "http", "protocol": "TCP"}]
    assert api["ingress"][0]["from"][0]["namespaceSelector"]["matchLabels"] == {
        "kubernetes.io/metadata.name": "ingress-nginx"
    }
    ports = [p["port"] for rule in api["egress"] for p in rule.get("ports", [])]
    assert 53 in ports and 443 in ports and 4317 in ports


# --- Service account, ingress, autoscaling, test hook, notes ------------------------------


def test_pods_run_as_the_service_account_carrying_the_iam_role() -> None:
    r = rendered(DEFAULT)
    (account,) = r.of_kind("ServiceAccount")
    assert (
        account["metadata"]["annotations"]["eks.amazonaws.com/role-arn"]
        == "arn:aws:iam::123456789012:role/limbo"
    )
    for deployment in service_deployments(r).values():
        assert (
            deployment["spec"]["template"]["spec"]["serviceAccountName"]
            == account["metadata"]["name"]
        )
    external = rendered(EXISTING_SECRETS)
    assert not external.of_kind("ServiceAccount")
    for deployment in service_deployments(external).values():
        assert deployment["spec"]["template"]["spec"]["serviceAccountName"] == "limbo-sender"


def test_ingress_routes_its_hosts_to_the_api_service_with_tls() -> None:
    r = rendered(INGRESS_TLS)
    (ingress,) = r.of_kind("Ingress")
    spec = ingress["spec"]
    assert spec["ingressClassName"] == "nginx"
    assert spec["tls"] == [{"secretName": "limbo-tls", "hosts": ["mail.example.com"]}]
    (rule,) = spec["rules"]
    assert rule["host"] == "mail.example.com"
    backend = rule["http"]["paths"][0]["backend"]["service"]
    service = r.get("Service", backend["name"])
    assert backend["port"]["name"] in {p["name"] for p in service["spec"]["ports"]}
    assert component(service) == "api"
    assert ingress["metadata"]["annotations"]["cert-manager.io/cluster-issuer"] == "letsencrypt"


@pytest.mark.parametrize("values", [None, INGRESS_TLS], ids=["chart defaults", "ingress-tls"])
def test_the_ingress_does_not_publish_metrics_or_probes(values: Path | None) -> None:
    if values is None:
        r = rendered(sets=["api.ingress.enabled=true", "queue.url=https://q.example/x.fifo"])
    else:
        r = rendered(values)
    (ingress,) = r.of_kind("Ingress")
    routed = [
        (path["path"], path["pathType"])
        for rule in ingress["spec"]["rules"]
        for path in rule["http"]["paths"]
    ]
    for private in ("/metrics", "/health", "/ready"):
        for path, kind in routed:
            prefix = path.rstrip("/")
            reaches = private == path or (kind != "Exact" and private.startswith(prefix + "/"))
            assert not reaches, f"{path} ({kind}) routes {private} to the public"


def test_the_api_autoscaler_replaces_fixed_replicas() -> None:
    r = rendered(KEDA_OFF)
    (hpa,) = r.of_kind("HorizontalPodAutoscaler")
    assert hpa["spec"]["scaleTargetRef"] == {
        "apiVersion": "apps/v1",
        "kind": "Deployment",
        "name": "limbo-api",
    }
    assert "replicas" not in r.get("Deployment", "limbo-api")["spec"]
    assert rendered(DEFAULT).get("Deployment", "limbo-api")["spec"]["replicas"] == 2


def test_helm_test_pod_checks_the_api_through_its_service() -> None:
    r = rendered(DEFAULT)
    (pod,) = r.of_kind("Pod")
    assert pod["metadata"]["annotations"]["helm.sh/hook"] == "test"
    (container,) = pod["spec"]["containers"]
    api = r.get("Deployment", "limbo-api")
    assert container["image"] == main_container(api)["image"], "needs no other image"
    script = container["command"][-1]
    service = r.get("Service", "limbo-api")
    assert f"http://limbo-api:{service['spec']['ports'][0]['port']}" in script
    assert '"/health", "/ready"' in script


def test_a_changed_setting_rolls_the_pods() -> None:
    def checksum(level: str) -> str:
        r = rendered(DEFAULT, sets=[f"logging.level={level}"])
        annotations = r.get("Deployment", "limbo-ses-worker")["spec"]["template"]["metadata"][
            "annotations"
        ]
        return str(annotations["checksum/config"])

    assert checksum("info") != checksum("debug")


def notes(*args: str) -> str:
    result = helm(
        "install", RELEASE, str(CHART), "--dry-run=client", "--namespace", NAMESPACE, *args
    )
    return result.stdout.split("NOTES:", 1)[1]


def test_notes_tell_how_to_reach_the_api_and_what_is_missing() -> None:
    bare = notes()
    assert "WARNING: not set: queue.url, queue.deadLetterUrl, aws.region" in bare
    assert "kubectl -n mail port-forward service/limbo-api 8080:80" in bare
    configured = notes("--values", str(DEFAULT))
    assert "WARNING" not in configured
    assert "https://mail.example.com/" in notes("--values", str(INGRESS_TLS))


def test_default_install_renders_exactly_these_objects() -> None:
    """The objects a typical EKS install creates (the README lists them too)."""
    r = rendered(DEFAULT)
    assert sorted((o["kind"], o["metadata"]["name"]) for o in r.objects) == [
        ("ConfigMap", "limbo"),
        ("ConfigMap", "limbo-api"),
        ("ConfigMap", "limbo-ses-worker"),
        ("Deployment", "limbo-api"),
        ("Deployment", "limbo-ses-worker"),
        ("Pod", "limbo-test-api"),
        ("PodDisruptionBudget", "limbo-api"),
        ("ScaledObject", "limbo-ses-worker"),
        ("Service", "limbo-api"),
        ("Service", "limbo-ses-worker"),
        ("ServiceAccount", "limbo"),
        ("TriggerAuthentication", "limbo-ses-worker"),
    ]


# --- Local development ----------------------------------------------------------------------


@pytest.mark.parametrize("values", [LOCAL, LOCAL_KEDA], ids=values_id)
def test_local_development_points_limbo_at_in_cluster_stand_ins(values: Path) -> None:
    r = rendered(values)
    services = {
        s["metadata"]["name"]: {p["port"] for p in s["spec"]["ports"]} for s in r.of_kind("Service")
    }
    for name, deployment in service_deployments(r).items():
        env = env_of(r, deployment)
        keys = ["QUEUE", "DEADLETTERQUEUE", "AWS_ENDPOINT_URL", "OTEL_EXPORTER_OTLP_ENDPOINT"]
        if name == "mailgun-worker":
            keys.append("MAILGUN_API_URL")
        for key in keys:
            url = urlparse(env[key])
            assert url.hostname in services, f"{name} {key}={env[key]}: no such Service"
            assert url.port in services[url.hostname], f"{name} {key}={env[key]}"
    # The set-up Job creates the queues the services are given, after install and upgrade.
    job = r.get("Job", "limbo-aws-setup")
    assert job["metadata"]["annotations"]["helm.sh/hook"] == "post-install,post-upgrade"
    command = job["spec"]["template"]["spec"]["containers"][0]["command"]
    worker = env_of(r, r.get("Deployment", "limbo-mailgun-worker"))
    assert command[command.index("--queue-name") + 1] == worker["QUEUE"].rsplit("/", 1)[1]
    assert command[command.index("--endpoint") + 1] == worker["AWS_ENDPOINT_URL"]
    assert command[command.index("--region") + 1] == worker["REGION"]
    # The emulator verifies the sender, whose domain limbo is told it may send from.
    sender = command[command.index("--sender") + 1]
    api = env_of(r, r.get("Deployment", "limbo-api"))
    assert sender.rpartition("@")[2] in api["SENDER_DOMAINS"].split(",")
    # The sink accepts exactly the key the Mailgun worker sends.
    sink = r.get("Deployment", "limbo-mailgun-sink")
    assert env_of(r, sink)["SINK_API_KEY"] == worker["MAILGUN"]
    assert {"limbo-moto", "limbo-mailgun-sink", "limbo-jaeger"} <= set(services)


def test_production_values_run_no_development_stand_in() -> None:
    for values in (DEFAULT, KEDA_OFF, INGRESS_TLS, EXISTING_SECRETS):
        r = rendered(values)
        assert not r.of_kind("Job")
        assert {component(d) for d in r.of_kind("Deployment")} <= set(SERVICES)
        secret = r.find("Secret", RELEASE)
        if secret is not None:
            assert base64.b64decode(secret["data"]["AWS_ACCESS_KEY_ID"]) != b"testing"


def test_both_streams_queues_reach_the_services_and_keda_scales_on_each() -> None:
    r = rendered(DEFAULT)
    transactional = "https://sqs.eu-west-1.amazonaws.com/123456789012/limbo.fifo"
    bulk = "https://sqs.eu-west-1.amazonaws.com/123456789012/limbo-bulk.fifo"
    api = env_of(r, r.get("Deployment", "limbo-api"))
    assert (api["QUEUE"], api["BULK_QUEUE"]) == (transactional, bulk)
    assert api["BULK_KEYS"] == "newsletters,digests"
    for worker in ("limbo-ses-worker",):
        env = env_of(r, r.get("Deployment", worker))
        assert (env["QUEUE"], env["BULK_QUEUE"], env["BULK_CONCURRENCY"]) == (
            transactional,
            bulk,
            "16",
        )
        triggers = r.get("ScaledObject", worker)["spec"]["triggers"]
        assert [t["metadata"]["queueURL"] for t in triggers] == [transactional, bulk]


def test_without_a_bulk_queue_there_is_one_trigger_and_no_bulk_variable() -> None:
    r = rendered(INGRESS_TLS)
    assert "BULK_QUEUE" not in env_of(r, r.get("Deployment", "limbo-api"))
    assert len(r.get("ScaledObject", "limbo-ses-worker")["spec"]["triggers"]) == 1


# --- Delivery events ----------------------------------------------------------------------

EVENTS = CI / "events-values.yaml"


def test_delivery_events_reach_the_api_the_consumer_and_keda() -> None:
    r = rendered(EVENTS)
    events = env_of(r, r.get("Deployment", "limbo-events"))
    api = env_of(r, r.get("Deployment", "limbo-api"))
    queue = "https://sqs.eu-west-1.amazonaws.com/123456789012/limbo-events"
    assert events["EVENTS_QUEUE"] == api["EVENTS_QUEUE"] == queue
    assert events["SES_EVENTS_TOPIC_ARN"] == "arn:aws:sns:eu-west-1:123456789012:limbo-ses-events"
    assert events["SNS_VERIFY_SIGNATURES"] == "true"
    assert events["STATUS_TABLE"] == "limbo-status"
    # The API reads the signing key from the existing Secret; the chart renders no copy.
    assert api["MAILGUN_WEBHOOK_SIGNING_KEY"] == EXISTING_SECRET_VALUE
    [container] = r.get("Deployment", "limbo-api")["spec"]["template"]["spec"]["containers"]
    [reference] = [e for e in container["env"] if e["name"] == "MAILGUN_WEBHOOK_SIGNING_KEY"]
    assert reference["valueFrom"]["secretKeyRef"]["name"] == "limbo-mailgun-webhook"
    scaled = r.get("ScaledObject", "limbo-events")["spec"]
    assert scaled["triggers"][0]["metadata"]["queueURL"] == queue
    assert "MAILGUN_WEBHOOK_SIGNING_KEY" not in events


def test_locally_the_sink_signs_webhooks_with_the_key_the_api_verifies() -> None:
    r = rendered(LOCAL)
    api = env_of(r, r.get("Deployment", "limbo-api"))
    sink = r.get("Deployment", "limbo-mailgun-sink")
    sink_env = container_env(r, sink["spec"]["template"], main_container(sink))
    assert sink_env["SINK_WEBHOOK_SIGNING_KEY"] == api["MAILGUN_WEBHOOK_SIGNING_KEY"]
    assert sink_env["SINK_WEBHOOK_URL"] == "http://limbo-api:80/v1/events/mailgun"
    events = env_of(r, r.get("Deployment", "limbo-events"))
    assert events["SNS_VERIFY_SIGNATURES"] == "false"  # moto cannot sign as SNS does
    ses = env_of(r, r.get("Deployment", "limbo-ses-worker"))
    assert ses["SES_CONFIGURATION_SET"] == "limbo-events"


def test_with_webhooks_the_consumer_and_the_api_tell_them() -> None:
    # limbo-events tells changed outcomes, the API suppressed recipients.
    r = rendered(EVENTS, WEBHOOKS)
    hooks_queue = "https://sqs.eu-west-1.amazonaws.com/123456789012/limbo-webhooks"
    assert env_of(r, r.get("Deployment", "limbo-events"))["WEBHOOK_QUEUE"] == hooks_queue
    assert env_of(r, r.get("Deployment", "limbo-api"))["WEBHOOK_QUEUE"] == hooks_queue


def test_events_without_the_status_table_refuse_to_render() -> None:
    result = helm(
        "template",
        "limbo",
        str(CHART),
        "--values",
        str(EVENTS),
        "--set",
        "tracking.statusTable=",
        check=False,
    )
    assert result.returncode != 0 and "events.enabled needs tracking.statusTable" in result.stderr


# --- Webhooks ---------------------------------------------------------------------------------


def test_the_webhook_worker_consumes_and_scales_on_its_own_queue() -> None:
    r = rendered(WEBHOOKS)
    hooks_queue = "https://sqs.eu-west-1.amazonaws.com/123456789012/limbo-webhooks"
    worker = env_of(r, r.get("Deployment", "limbo-webhooks"))
    assert worker["QUEUE"] == hooks_queue
    assert worker["DEADLETTERQUEUE"] == "", "no dead letters into the mail queue's FIFO DLQ"
    assert worker["STATUS_TABLE"] == "limbo-status"
    assert (worker["WEBHOOK_RETRY_BASE"], worker["WEBHOOK_DISABLE_AFTER"]) == ("10", "259200")
    assert worker["WEBHOOK_ALLOW_HOSTS"] == "receiver.apps.svc.cluster.local,10.40.0.0/16"
    triggers = r.get("ScaledObject", "limbo-webhooks")["spec"]["triggers"]
    assert [t["metadata"]["queueURL"] for t in triggers] == [hooks_queue], "not the mail queues"
    assert r.get("ScaledObject", "limbo-webhooks")["spec"]["maxReplicaCount"] == 4
    mail_trigger = r.get("ScaledObject", "limbo-ses-worker")["spec"]["triggers"][0]["metadata"]
    assert mail_trigger["queueURL"].endswith("/limbo.fifo")
    # The mail workers put the jobs there; the API applies the same destination rules.
    ses = env_of(r, r.get("Deployment", "limbo-ses-worker"))
    assert ses["WEBHOOK_QUEUE"] == hooks_queue and ses["QUEUE"].endswith("/limbo.fifo")
    api = env_of(r, r.get("Deployment", "limbo-api"))
    assert api["WEBHOOK_ALLOW_HOSTS"] == worker["WEBHOOK_ALLOW_HOSTS"]
    assert "WEBHOOK_ALLOW_HTTP" not in api


def test_webhooks_are_off_by_default_and_refused_without_tracking() -> None:
    r = rendered(DEFAULT)
    assert r.find("Deployment", "limbo-webhooks") is None
    assert "WEBHOOK_QUEUE" not in r.get("ConfigMap", RELEASE)["data"]
    assert "needs tracking.statusTable" in render_error([WEBHOOKS], ["tracking.statusTable="])
    assert "needs webhooks.queueUrl" in render_error([WEBHOOKS], ["webhooks.queueUrl="])
    assert "webhooks" in render_error([WEBHOOKS], ["webhooks.queueUrl=https://q.example/x.fifo"])


def test_one_routing_policy_reaches_every_worker_and_loads_as_their_settings(
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    r = rendered(ROUTING)
    for worker in ("limbo-ses-worker", "limbo-mailgun-worker"):
        env = env_of(r, r.get("Deployment", worker))
        assert env["ROUTING"] == "ses>mailgun" and env["FAILOVER_HOLD"] == "60"
        for name, value in env.items():
            monkeypatch.setenv(name, value)
        settings = load_settings(WorkerSettings)
        assert settings.policy == ("ses", "mailgun") and settings.failover_hold == 60
    assert "ROUTING" not in r.get("ConfigMap", RELEASE)["data"], "workers only"
    default = rendered(DEFAULT)
    assert "ROUTING" not in env_of(default, default.get("Deployment", "limbo-ses-worker"))


def test_a_routing_policy_the_workers_cannot_follow_is_refused_at_install() -> None:
    assert "needs tracking.statusTable" in render_error([ROUTING], ["tracking.statusTable="])
    assert "mailgun, whose worker is not enabled" in render_error(
        [ROUTING], ["mailgunWorker.enabled=false"]
    )
    assert "limbo's providers are ses and mailgun" in render_error(
        [ROUTING], ["routing.policy=ses>postmark"]
    )
    assert "routing/policy" in render_error([ROUTING], ["routing.policy=ses:80"])
