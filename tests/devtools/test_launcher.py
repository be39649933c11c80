"""The one launcher starts every component of the local stack the same way."""

from __future__ import annotations

from pathlib import Path

from limbo_devtools.launcher import Launcher
from limbo_devtools.mailgun_sink import SinkConfig

from ..http_client import HTTP


def test_a_started_component_answers_logs_to_its_file_and_stops_with_the_launcher(
    tmp_path: Path,
) -> None:
    with Launcher(tmp_path, mailgun_key="key-launch") as launcher:
        url = launcher.sink(SinkConfig(fail_400=1.0))
        (process,) = launcher.processes
        assert launcher.url("sink") == url
        answer = HTTP.post(
            f"{url}/v3/mg.example.com/messages",
            data={"from": "a@example.com", "to": "b@example.com"},
            auth=("api", "key-launch"),  # the launcher's key reached the sink
            timeout=10,
        )
        assert answer.status_code == 400
        assert [path.name for path in tmp_path.glob("*.log")] == [
            f"limbo-mailgun-sink-{url.rsplit(':', 1)[1]}.log"
        ]
    assert process.popen is not None and process.popen.poll() is not None


def test_limbo_processes_get_the_queue_then_the_launcher_then_the_call(
    tmp_path: Path, moto_endpoint: str
) -> None:
    launcher = Launcher(tmp_path, env={"LOG_FORMAT": "json", "REGION": "eu-west-1"})
    aws = launcher.provision(moto_endpoint, queue_name="launcher-env.fifo")
    env = launcher.limbo_env(LOG_FORMAT="console")
    assert env["QUEUE"] == aws.queue_url
    assert env["REGION"] == "eu-west-1"
    assert env["LOG_FORMAT"] == "console"
