"""API keys: who may call, what they are told when they may not, and who owns what they send."""

from __future__ import annotations

import subprocess
import time
from pathlib import Path

import pytest
from starlette.testclient import TestClient

from limbo_api.auth import ApiKeys, hash_key, load_api_keys
from limbo_devtools.local_aws import LocalAws
from limbo_devtools.processes import START_TIMEOUT, free_port, script
from limbo_shared.config import ConfigError
from limbo_shared.schema import QueuedMail

from ..conftest import Limbo
from ..http_client import HTTP
from .conftest import ALICE_KEY, BOB_KEY, VALID, ApiFactory, api_settings, bearer
from .test_routes import receive_all


@pytest.fixture
def api(tracked_api: TestClient) -> TestClient:
    return tracked_api


def test_probes_metrics_and_the_description_stay_open(api: TestClient) -> None:
    for path in ("/", "/health", "/ready", "/metrics", "/openapi.json"):
        assert api.get(path).status_code == 200, path


WRONG_CREDENTIALS = {
    "missing": {},
    "empty": {"Authorization": "Bearer"},
    "unknown": {"Authorization": "Bearer limbo_not-a-key"},
    "near-miss": {"Authorization": f"Bearer {ALICE_KEY}x"},
    "wrong-scheme": {"Authorization": f"Basic {ALICE_KEY}"},
    "no-scheme": {"Authorization": ALICE_KEY},
}


def test_a_missing_or_wrong_key_is_401_and_nothing_is_queued(
    api: TestClient, tracked_aws: LocalAws
) -> None:
    for case, headers in WRONG_CREDENTIALS.items():
        response = api.post("/v1/mail", json=VALID, headers=headers)
        assert response.status_code == 401, case
        # The same words whatever was wrong: nothing tells whether a key exists.
        assert response.json() == {
            "Message": "not submitted",
            "Problem": "a valid API key is required, "
            "sent as a Bearer token in the Authorization header",
        }, case
        assert response.headers["WWW-Authenticate"].startswith("Bearer"), case
    assert receive_all(tracked_aws) == []


def test_status_lookups_need_a_key_too(api: TestClient) -> None:
    response = api.get("/v1/mail/6f1c0000-0000-4000-8000-000000000000")
    assert response.status_code == 401
    assert set(response.json()) == {"Message", "Problem"}


def test_the_key_name_owns_the_mail_and_its_message_groups(
    api: TestClient, tracked_aws: LocalAws
) -> None:
    assert api.post("/v1/mail", json=VALID, headers=bearer(ALICE_KEY)).status_code == 200
    assert (
        api.post("/v1/mail", json=VALID, headers={"authorization": f"bearer {BOB_KEY}"}).status_code
        == 200
    )
    messages = receive_all(tracked_aws)
    owners = sorted(QueuedMail.from_json(m["Body"]).owner for m in messages)
    assert owners == ["alice", "bob"]
    for message in messages:
        owner = QueuedMail.from_json(message["Body"]).owner
        group, lane = message["Attributes"]["MessageGroupId"].split(".")
        assert group == owner and 0 <= int(lane) < 16


def test_two_keys_may_share_a_name_for_rotation(tracked_api_factory: ApiFactory) -> None:
    new_key = "limbo_alice-rotated-key-000000000000000000000"
    api = tracked_api_factory(
        api_keys=f"alice={hash_key(ALICE_KEY)}\n# rotated in\nalice={hash_key(new_key)}"
    )
    for key in (ALICE_KEY, new_key):
        assert api.post("/v1/mail", json=VALID, headers=bearer(key)).status_code == 200


def test_keys_can_come_from_a_file(tracked_api_factory: ApiFactory, tmp_path: Path) -> None:
    keys = tmp_path / "api-keys"
    keys.write_text(f"# limbo API keys\nbob={hash_key(BOB_KEY)}  # bob's service\n")
    api = tracked_api_factory(api_keys=None, api_keys_file=keys)
    assert api.post("/v1/mail", json=VALID, headers=bearer(BOB_KEY)).status_code == 200
    assert api.post("/v1/mail", json=VALID, headers=bearer(ALICE_KEY)).status_code == 401


def test_without_keys_the_api_runs_open_only_when_told(aws: LocalAws) -> None:
    with pytest.raises(ConfigError, match=r"API_KEYS is not set.*AUTH=disabled"):
        load_api_keys(api_settings(aws, auth="enabled"))
    assert load_api_keys(api_settings(aws, auth="disabled")) is None


def test_a_malformed_entry_is_named_without_echoing_it(aws: LocalAws) -> None:
    pasted = "limbo_oops-this-is-a-raw-key"
    with pytest.raises(ConfigError) as caught:
        load_api_keys(api_settings(aws, auth="enabled", api_keys=f"alice={pasted}"))
    assert "API_KEYS entry 1 (alice)" in str(caught.value)
    assert pasted not in str(caught.value)


def test_the_api_process_refuses_to_start_without_keys(aws: LocalAws) -> None:
    result = subprocess.run(
        [script("limbo-api")],
        capture_output=True,
        text=True,
        timeout=START_TIMEOUT,
        env={**aws.environment(), "PORT": str(free_port()), "PATH": "/usr/bin:/bin"},
    )
    assert result.returncode == 2
    assert result.stderr.strip().startswith("limbo-api: configuration error: API_KEYS is not set")


def test_limbo_api_key_mints_a_key_and_the_line_that_stores_it() -> None:
    outputs = [
        subprocess.run(
            [script("limbo-api-key"), "billing"],
            capture_output=True,
            text=True,
            check=True,
            timeout=START_TIMEOUT,
        ).stdout
        for _ in range(2)
    ]
    keys = []
    for output in outputs:
        lines = [line.strip() for line in output.splitlines()]
        key = next(line for line in lines if line.startswith("limbo_"))
        stored = next(line for line in lines if line.startswith("billing=sha256:"))
        assert key not in stored
        assert ApiKeys(ApiKeys.parse(stored, "API_KEYS")).identify(key) == "billing"
        keys.append(key)
    assert keys[0] != keys[1] and len(keys[0]) > 40


def test_limbo_api_key_refuses_a_name_that_cannot_be_a_message_group() -> None:
    result = subprocess.run(
        [script("limbo-api-key"), "has.dot"], capture_output=True, text=True, timeout=START_TIMEOUT
    )
    assert result.returncode != 0 and "NAME" in result.stderr


def _mount(directory: Path, version: str, text: str) -> None:
    """Write keys the way the kubelet updates a mounted Secret: a new directory, then one
    atomic swap of the `..data` symlink the file names point through."""
    (directory / version).mkdir()
    (directory / version / "API_KEYS").write_text(text)
    (directory / "..data.tmp").symlink_to(version)
    (directory / "..data.tmp").rename(directory / "..data")
    if not (directory / "API_KEYS").is_symlink():
        (directory / "API_KEYS").symlink_to("..data/API_KEYS")


def test_a_key_revoked_in_the_mounted_file_is_refused_without_a_restart(
    limbo: Limbo, tmp_path: Path
) -> None:
    secret = tmp_path / "secret"
    secret.mkdir()
    _mount(secret, "v1", f"alice={hash_key(ALICE_KEY)}\n")
    process, url = limbo.api(AUTH="enabled", API_KEYS_FILE=str(secret / "API_KEYS"))

    def status(key: str) -> int:
        return HTTP.post(f"{url}/v1/mail", json=VALID, headers=bearer(key), timeout=10).status_code

    assert (status(ALICE_KEY), status(BOB_KEY)) == (200, 401)
    _mount(secret, "v2", f"bob={hash_key(BOB_KEY)}\n")  # alice revoked, bob added
    deadline = time.monotonic() + 15
    while (status(ALICE_KEY), status(BOB_KEY)) != (401, 200):
        assert time.monotonic() < deadline, "the new keys were not picked up"
        time.sleep(0.2)
    # A broken file keeps the keys that were in force.
    _mount(secret, "v3", "bob=not-a-hash\n")
    time.sleep(1.5)
    assert (status(ALICE_KEY), status(BOB_KEY)) == (401, 200)
    assert process.popen is not None and process.popen.poll() is None
