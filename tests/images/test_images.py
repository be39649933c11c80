"""The container images: how they are built, and that what they run actually works.

Each service image is smoke-run the way Kubernetes runs it under the chart (read-only
root filesystem, no capabilities, the image's own non-root user), with host networking,
against a real moto server and a real Mailgun sink started by the shared fixtures.
"""

from __future__ import annotations

import json
import time
from typing import Any

import pytest

from limbo_devtools.local_aws import LocalAws
from limbo_devtools.processes import free_port
from limbo_shared.aws import new_session

from ..conftest import sink_messages
from ..http_client import HTTP
from .conftest import IMAGES, REPORT, Built, Containers, Podman

# The set-up waits for scripts/tools (about two minutes on a new machine), then builds all
# six images: 270-360 s from nothing on two cores, 700 s seen with a benchmark running
# beside the suite. A hang guard at twice that; warm, the builds take seconds.
pytestmark = [pytest.mark.slow, pytest.mark.timeout(1500)]

SERVICE_IMAGES = (
    "limbo-api",
    "limbo-ses-worker",
    "limbo-mailgun-worker",
    "limbo-webhooks",
    "limbo-events",
)
# The debootstrap base is ~130 MB; the images keep ~80 MB of it (no apt, perl, sbin...)
# and the venvs hold what they run (no gRPC, no unused botocore models; devtools: only
# the moto services limbo uses, nothing of the services' uvloop, protobuf or dnspython).
MAX_IMAGE_MB = 150

MAIL = {
    "from": "limbo@example.com",
    "to": ["you@example.com"],
    "subject": "from a container",
    "message": "Hi from limbo's images",
}


def inspect(podman: Podman, reference: str) -> dict[str, Any]:
    data: list[dict[str, Any]] = json.loads(podman.run("image", "inspect", reference).stdout)
    return data[0]


def aws_env(aws: LocalAws) -> dict[str, str]:
    return {**aws.environment(), "LOG_FORMAT": "json", "WAIT_TIME_SECONDS": "1", "AUTH": "disabled"}


@pytest.mark.parametrize("name", [spec.name for spec in IMAGES])
def test_image_runs_as_numeric_non_root_user_with_exec_form_command(
    podman: Podman, images: dict[str, Built], name: str
) -> None:
    assert images[name].size_bytes / 1e6 < MAX_IMAGE_MB
    config = inspect(podman, images[name].reference)["Config"]
    user, _, group = config["User"].partition(":")
    assert user.isdigit() and int(user) != 0, f"USER must be numeric and not root: {user!r}"
    assert group.isdigit() and int(group) != 0
    command = config.get("Entrypoint") or config.get("Cmd")
    # Exec form: the service is PID 1 and gets the kubelet's SIGTERM itself.
    assert command and command[0].startswith("/app/.venv/bin/"), command
    assert not any(part.startswith("/bin/sh") for part in command)


def test_the_service_images_share_every_layer_and_differ_only_in_their_command(
    podman: Podman, images: dict[str, Built]
) -> None:
    """A node pulls the dependencies once for all five services, and a build makes them
    once; devtools (moto, the sink) has a virtual environment of its own."""
    layers = {
        spec.name: inspect(podman, images[spec.name].reference)["RootFS"]["Layers"]
        for spec in IMAGES
    }
    shared = layers["limbo-api"]
    assert all(layers[name] == shared for name in SERVICE_IMAGES), layers
    assert layers["limbo-devtools"] != shared
    # The base is the first layer of all six.
    assert layers["limbo-devtools"][0] == shared[0]
    commands = {
        tuple(inspect(podman, images[name].reference)["Config"]["Entrypoint"])
        for name in SERVICE_IMAGES
    }
    assert len(commands) == len(SERVICE_IMAGES)


@pytest.mark.parametrize("name", SERVICE_IMAGES)
def test_service_image_holds_no_compiler_cache_or_sources(
    podman: Podman, images: dict[str, Built], name: str
) -> None:
    probe = podman.run(
        "run",
        "--rm",
        "--pull=never",
        "--entrypoint",
        "/bin/sh",
        images[name].reference,
        "-c",
        "for tool in gcc cc c++ make uv pip; do command -v $tool; done;"
        "ls -d /src /root/.cache /app/.venv/lib/python3*/site-packages/pytest "
        "/app/.venv/lib/python3*/site-packages/moto 2>/dev/null; true",
    )
    assert probe.stdout.strip() == "", f"found in {name}: {probe.stdout}"
    # The service itself and the shared library are installed as packages, not links to /src.
    imports = podman.run(
        "run",
        "--rm",
        "--pull=never",
        "--entrypoint",
        "/app/.venv/bin/python",
        images[name].reference,
        "-c",
        f"import {name.replace('-', '_')}, limbo_shared; print(limbo_shared.__file__)",
    )
    assert "/app/.venv/lib/" in imports.stdout
    # The chart's preStop hook sleeps with the base image's /bin/sleep.
    podman.run(
        "run", "--rm", "--pull=never", "--entrypoint", "/bin/sleep", images[name].reference, "0"
    )


def test_api_and_mailgun_worker_containers_deliver_a_message(
    images: dict[str, Built], containers: Containers, aws: LocalAws, sink_factory: Any
) -> None:
    started = time.monotonic()
    sink = sink_factory()
    api_port, worker_port = free_port(), free_port()
    api = containers.start(
        images["limbo-api"].reference, "api", api_port, {**aws_env(aws), "PORT": str(api_port)}
    )
    worker = containers.start(
        images["limbo-mailgun-worker"].reference,
        "mailgun-worker",
        worker_port,
        {
            **aws_env(aws),
            "PORT": str(worker_port),
            "MAILGUN": "key-test",
            "DOMAIN": "mg.example.com",
            "MAILGUN_API_URL": sink,
        },
    )
    assert HTTP.get(f"{api.url}/ready", timeout=5).status_code == 200

    response = HTTP.post(f"{api.url}/v1/mail", json=MAIL, timeout=10)
    assert response.status_code == 200, response.text
    deadline = time.monotonic() + 30
    while not sink_messages(sink) and time.monotonic() < deadline:
        time.sleep(0.2)
    delivered = sink_messages(sink)
    assert len(delivered) == 1, containers.podman.logs(worker.name)
    fields = delivered[0]["fields"]
    assert fields["subject"] == [MAIL["subject"]]  # type: ignore[index]
    assert fields["to"] == MAIL["to"]  # type: ignore[index]
    metrics = HTTP.get(f"{worker.url}/metrics", timeout=5).text
    assert "limbo" in metrics

    # SIGTERM reaches the service as PID 1 and it drains and exits cleanly.
    assert containers.stop(worker.name) == 0, containers.podman.logs(worker.name)
    assert containers.stop(api.name) == 0, containers.podman.logs(api.name)
    REPORT.smoke_seconds["api + mailgun worker"] = time.monotonic() - started


def test_ses_worker_container_sends_through_the_emulator(
    images: dict[str, Built], containers: Containers, aws: LocalAws
) -> None:
    started = time.monotonic()
    api_port, worker_port = free_port(), free_port()
    api = containers.start(
        images["limbo-api"].reference, "api", api_port, {**aws_env(aws), "PORT": str(api_port)}
    )
    subject = f"ses from a container {time.time()}"
    response = HTTP.post(f"{api.url}/v1/mail", json={**MAIL, "subject": subject}, timeout=10)
    assert response.status_code == 200, response.text
    worker = containers.start(
        images["limbo-ses-worker"].reference,
        "ses-worker",
        worker_port,
        {**aws_env(aws), "PORT": str(worker_port)},
    )

    def sent() -> list[dict[str, Any]]:
        data = HTTP.get(f"{aws.endpoint}/moto-api/data.json", timeout=10).json()
        return [m for m in data["ses"]["Message"] if m["subject"] == subject]

    deadline = time.monotonic() + 30
    while not sent() and time.monotonic() < deadline:
        time.sleep(0.2)
    messages = sent()
    assert len(messages) == 1, containers.podman.logs(worker.name)
    assert messages[0]["source"] == aws.sender
    assert containers.stop(worker.name) == 0, containers.podman.logs(worker.name)
    REPORT.smoke_seconds["ses worker"] = time.monotonic() - started


def test_devtools_image_runs_the_emulator_its_set_up_and_the_sink(
    images: dict[str, Built], containers: Containers
) -> None:
    """What the local-development values run in the cluster, from the one devtools image."""
    started = time.monotonic()
    image = images["limbo-devtools"].reference
    moto_port, sink_port = free_port(), free_port()
    moto = containers.start(
        image,
        "moto",
        moto_port,
        {},
        ["/app/.venv/bin/limbo-moto", "-H", "127.0.0.1", "-p", str(moto_port)],
        health_path="/moto-api/",
    )
    setup = containers.podman.run(
        "run",
        "--rm",
        "--pull=never",
        "--network",
        "host",
        "--read-only",
        "--cap-drop",
        "ALL",
        "--env",
        "AWS_ACCESS_KEY_ID=testing",
        "--env",
        "AWS_SECRET_ACCESS_KEY=testing",
        image,
        "/app/.venv/bin/limbo-local-aws",
        "--endpoint",
        moto.url,
        "--region",
        "eu-west-1",
    )
    assert "export QUEUE=" in setup.stdout and "limbo.fifo" in setup.stdout
    sqs = new_session().client(
        "sqs",
        endpoint_url=moto.url,
        region_name="eu-west-1",
        aws_access_key_id="testing",
        aws_secret_access_key="testing",
    )
    urls = sqs.list_queues()["QueueUrls"]
    # The mail queue, its bulk stream and dead-letter queue, the schedule queue, the
    # webhook queue, and the delivery events' queue with its dead-letter queue.
    assert sorted(url.rsplit("/", 1)[-1] for url in urls) == [
        "limbo-bulk.fifo",
        "limbo-dlq.fifo",
        "limbo-events",
        "limbo-events-dlq",
        "limbo-schedule",
        "limbo-webhooks",
        "limbo.fifo",
    ]
    # The emulator's own view, which the README points at to see emulated SES mail: the
    # pruned image still holds every model the set-up reached.
    data = HTTP.get(f"{moto.url}/moto-api/data.json", timeout=10).json()
    assert len(data["sqs"]["Queue"]) == len(urls)
    # The sender and its domain (limbo sends from any address of a verified domain).
    assert len(data["ses"]["EmailIdentity"]) == 2
    sink = containers.start(
        image, "sink", sink_port, {"SINK_PORT": str(sink_port), "SINK_API_KEY": "key"}
    )
    assert HTTP.get(f"{sink.url}/messages", timeout=5).json()["count"] == 0
    REPORT.smoke_seconds["devtools"] = time.monotonic() - started


def test_webhooks_container_starts_against_the_emulator_and_is_ready(
    images: dict[str, Built], containers: Containers, tracked_aws: LocalAws
) -> None:
    """The webhook worker's image runs its command: the registry table and the webhook
    queue answer, so it is ready (deliveries themselves: tests/webhooks)."""
    started = time.monotonic()
    port = free_port()
    assert tracked_aws.webhook_queue_url is not None
    worker = containers.start(
        images["limbo-webhooks"].reference,
        "webhooks",
        port,
        {
            **aws_env(tracked_aws),
            "QUEUE": tracked_aws.webhook_queue_url,
            "DEADLETTERQUEUE": "",
            "PORT": str(port),
        },
    )
    containers.wait_http(worker.name, f"{worker.url}/ready")
    assert containers.stop(worker.name) == 0, containers.podman.logs(worker.name)
    REPORT.smoke_seconds["webhooks"] = time.monotonic() - started
