"""Podman as scripts/tools sets it up, and the images built once per test session.

There is no Docker engine on these machines and no registry to pull from: scripts/tools
installs podman, writes its configuration under .tools/podman/ and imports a Python base
image it made with debootstrap. When any of that is missing the tests fail and say so:
an image that was never built must not pass as "skipped".
"""

from __future__ import annotations

import os
import shutil
import subprocess
import time
from collections.abc import Iterator, Sequence
from dataclasses import dataclass, field
from pathlib import Path

import httpx
import pytest

from ..conftest import SUMMARY_PROPERTY
from ..http_client import HTTP
from ..tooling import said, wait_for_tools

ROOT = Path(__file__).resolve().parents[2]
PODMAN_DIR = ROOT / ".tools" / "podman"
BASE_IMAGE = "localhost/python-base"
HOST_CA_BUNDLE = Path("/etc/ssl/certs/ca-certificates.crt")
TAG = "test"


# Every image comes from the one Dockerfile, the target picking the command (as
# skaffold.yaml builds them): the five services from the same build arguments, so after
# the first they are cache hits up to their last stage; devtools fills its own
# virtual environment with PACKAGES.
DOCKERFILE = "Dockerfile"


@dataclass(frozen=True)
class ImageSpec:
    name: str
    target: str
    build_args: tuple[tuple[str, str], ...] = ()


IMAGES = (
    ImageSpec("limbo-api", "api"),
    ImageSpec("limbo-ses-worker", "ses-worker"),
    ImageSpec("limbo-mailgun-worker", "mailgun-worker"),
    ImageSpec("limbo-webhooks", "webhooks"),
    ImageSpec("limbo-events", "events"),
    ImageSpec("limbo-devtools", "devtools", (("PACKAGES", "limbo-devtools"),)),
)


@dataclass
class Built:
    reference: str
    size_bytes: int
    build_seconds: float


@dataclass
class Report:
    """What the closing summary prints: each image's size and build time, smoke timings."""

    built: dict[str, Built] = field(default_factory=dict)
    smoke_seconds: dict[str, float] = field(default_factory=dict)


REPORT = Report()


class Podman:
    def __init__(self, env: dict[str, str]) -> None:
        self.env = env

    def run(
        self, *args: str, check: bool = True, timeout: float = 600, input: bytes | None = None
    ) -> subprocess.CompletedProcess[str]:
        result = subprocess.run(
            ["podman", *args],
            env=self.env,
            capture_output=True,
            text=True,
            timeout=timeout,
            input=input.decode() if input else None,
        )
        if check and result.returncode != 0:
            raise AssertionError(
                f"podman {' '.join(args)} exited {result.returncode}\n"
                f"{result.stdout[-3000:]}\n{result.stderr[-3000:]}"
            )
        return result

    def logs(self, name: str) -> str:
        result = self.run("logs", name, check=False)
        return (result.stdout + result.stderr)[-4000:]


@pytest.fixture(scope="session")
def podman() -> Podman:
    wait_for_tools()
    containers_conf = PODMAN_DIR / "containers.conf"
    storage_conf = PODMAN_DIR / "storage.conf"
    if shutil.which("podman") is None:
        pytest.fail(
            "podman is not installed: run scripts/tools (as root it installs podman, "
            "runc, debootstrap, uidmap and fuse-overlayfs with apt-get)" + said(),
            pytrace=False,
        )
    if not containers_conf.exists() or not storage_conf.exists():
        pytest.fail(
            f"no podman configuration in {PODMAN_DIR}: run scripts/tools" + said(), pytrace=False
        )
    env = {
        **os.environ,
        "CONTAINERS_CONF": str(containers_conf),
        "CONTAINERS_STORAGE_CONF": str(storage_conf),
    }
    tool = Podman(env)
    probe = tool.run("image", "exists", BASE_IMAGE, check=False)
    if probe.returncode != 0:
        pytest.fail(
            f"podman has no {BASE_IMAGE} image ({probe.stderr.strip() or 'missing'}): "
            "run scripts/tools, which makes it with debootstrap (needs root)" + said(),
            pytrace=False,
        )
    return tool


def build(podman: Podman, spec: ImageSpec) -> Built:
    reference = f"localhost/{spec.name}:{TAG}"
    args = [
        "build",
        "--network",
        "host",
        "--pull=never",
        "--build-arg",
        f"BASE={BASE_IMAGE}",
        *(part for key, value in spec.build_args for part in ("--build-arg", f"{key}={value}")),
        "--target",
        spec.target,
        "-f",
        str(ROOT / DOCKERFILE),
        "-t",
        reference,
    ]
    # Outbound HTTPS may be re-signed by a local CA: lend the host's bundle to the build
    # (a volume, so nothing of it ends up in a layer).
    if HOST_CA_BUNDLE.exists():
        args += ["-v", f"{HOST_CA_BUNDLE}:{HOST_CA_BUNDLE}:ro"]
    previous = podman.run(
        "image", "inspect", "--format", "{{.Id}}", reference, check=False
    ).stdout.strip()
    started = time.monotonic()
    podman.run(*args, str(ROOT))
    seconds = time.monotonic() - started
    # A rebuilt image leaves its predecessor untagged: drop it, so .tools/podman does not
    # grow by an image per code change (the builder's cached layers stay).
    if (
        previous
        and previous
        != podman.run("image", "inspect", "--format", "{{.Id}}", reference).stdout.strip()
    ):
        podman.run("rmi", previous, check=False)
    size = int(podman.run("image", "inspect", "--format", "{{.Size}}", reference).stdout)
    return Built(reference, size, seconds)


@pytest.fixture(scope="session")
def images(podman: Podman) -> dict[str, Built]:
    for spec in IMAGES:
        REPORT.built[spec.name] = build(podman, spec)
    # What is left dangling for a week (builder stages of old lock files) is not cache any more.
    podman.run("image", "prune", "--force", "--filter", "until=168h", check=False)
    return REPORT.built


@dataclass
class Container:
    name: str
    url: str


class Containers:
    """Starts containers the way the chart runs pods: read-only root, no capabilities."""

    def __init__(self, podman: Podman) -> None:
        self.podman = podman
        self.names: list[str] = []

    def start(
        self,
        image: str,
        name: str,
        port: int,
        env: dict[str, str],
        command: Sequence[str] = (),
        health_path: str = "/health",
    ) -> Container:
        name = f"{name}-{os.getpid()}-{len(self.names)}"
        args = [
            "run",
            "--detach",
            "--pull=never",
            "--name",
            name,
            "--network",
            "host",
            "--read-only",
            "--tmpfs",
            "/tmp",
            "--cap-drop",
            "ALL",
            "--security-opt",
            "no-new-privileges",
        ]
        for key, value in env.items():
            args += ["--env", f"{key}={value}"]
        self.podman.run(*args, image, *command)
        self.names.append(name)
        url = f"http://127.0.0.1:{port}"
        self.wait_http(name, f"{url}{health_path}")
        return Container(name, url)

    def wait_http(self, name: str, url: str, timeout: float = 60) -> None:
        deadline = time.monotonic() + timeout
        while time.monotonic() < deadline:
            try:
                if HTTP.get(url, timeout=1).status_code == 200:
                    return
            except httpx.HTTPError:
                pass
            state = self.podman.run(
                "inspect", "--format", "{{.State.Status}}", name, check=False
            ).stdout.strip()
            if state not in ("running", "created", "configured"):
                raise AssertionError(
                    f"{name} is {state} before {url} answered:\n{self.podman.logs(name)}"
                )
            time.sleep(0.2)
        raise AssertionError(f"{url} did not answer 200 in {timeout}s:\n{self.podman.logs(name)}")

    def stop(self, name: str, grace: int = 30) -> int:
        """SIGTERM, as the kubelet sends it; the exit code tells whether it drained cleanly."""
        self.podman.run("stop", "--time", str(grace), name, timeout=grace + 30)
        code = self.podman.run("inspect", "--format", "{{.State.ExitCode}}", name).stdout
        return int(code.strip())

    def remove_all(self) -> None:
        for name in self.names:
            self.podman.run("rm", "--force", "--time", "5", name, check=False)


@pytest.fixture
def containers(podman: Podman) -> Iterator[Containers]:
    started = Containers(podman)
    yield started
    started.remove_all()


@pytest.fixture(autouse=True)
def report_lines(request: pytest.FixtureRequest) -> Iterator[None]:
    """Hands each image's size and build time to the closing summary (tests/conftest.py):
    as report properties, because with ./scripts/test's workers this process is not the
    one that prints it."""
    yield
    for name, built in REPORT.built.items():
        line = f"{name:22} {built.size_bytes / 1e6:6.0f} MB   built in {built.build_seconds:5.1f} s"
        request.node.user_properties.append((SUMMARY_PROPERTY, ("container images", line)))
    for test, seconds in REPORT.smoke_seconds.items():
        line = f"smoke {test:40} {seconds:5.1f} s"
        request.node.user_properties.append((SUMMARY_PROPERTY, ("container images", line)))
