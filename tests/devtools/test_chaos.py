"""The fault-injection run's parts: one set of defaults, the sink it asks for, its report."""

from __future__ import annotations

import json
from typing import TYPE_CHECKING, Any

import pytest

from limbo_devtools.chaos import ChaosConfig
from limbo_devtools.chaos.cli import main
from limbo_devtools.chaos.config import INJECTED_400
from limbo_devtools.chaos.report import build_report

if TYPE_CHECKING:
    from types_boto3_sqs.type_defs import MessageTypeDef


def delivered(*ids: str, injected: str | None = None) -> list[dict[str, Any]]:
    return [{"fields": {"h:X-Limbo-Message-Id": [i]}, "injected": injected} for i in ids]


def dead_letter(message_id: str, reason: str) -> MessageTypeDef:
    return {
        "Body": json.dumps({"id": message_id}),
        "MessageAttributes": {"limbo-reason": {"DataType": "String", "StringValue": reason}},
    }


def report(sink: dict[str, Any], letters: list[MessageTypeDef], accepted: set[str]) -> Any:
    return build_report(
        ChaosConfig(emails=len(accepted), concurrency=2),
        sink=sink,
        dead_letters=letters,
        accepted=accepted,
        refused=0,
        kills=1,
        failed_restarts=0,
        left=0,
        seconds=1.0,
    )


def test_the_sink_plays_the_configured_faults_with_the_runs_key_and_timing() -> None:
    config = ChaosConfig(send_timeout=3.0, seed=5)
    env = config.sink("key-run").to_env()
    assert env["SINK_API_KEY"] == "key-run"
    assert env["SINK_SLOW_SECONDS"] == "5.0"
    assert env["SINK_SEED"] == "5"
    assert float(env["SINK_FAIL_500"]) == config.faults.fail_500 > 0


def test_an_email_neither_delivered_nor_dead_lettered_is_lost() -> None:
    found = report({"messages": delivered("a"), "failures": {}}, [], {"a", "b"})
    assert (found.lost, found.lost_ids) == (1, ["b"])
    assert any("were lost" in problem for problem in found.problems())


def test_an_injected_rejection_accounts_for_its_email_and_anything_else_is_unexpected() -> None:
    letters = [
        dead_letter("b", f"rejected by mailgun: {INJECTED_400}"),
        dead_letter("c", "unparseable message"),
    ]
    sink = {"messages": delivered("a"), "failures": {"400": 1}}
    found = report(sink, letters, {"a", "b", "c"})
    assert found.lost == 0
    assert found.unexpected_dead_letters == ["c: unparseable message"]


def test_duplicates_within_the_kill_bound_are_no_problem_and_beyond_it_are() -> None:
    sink = {"messages": delivered("a", "a", "a"), "failures": {}}
    assert report(sink, [], {"a"}).problems() == []  # bound: 1 kill x concurrency 2
    sink = {"messages": delivered("a", "a", "a", "a"), "failures": {}}
    assert report(sink, [], {"a"}).problems() == ["3 duplicates exceed the bound 2"]


def test_the_command_takes_its_defaults_from_the_config(capsys: Any) -> None:
    with pytest.raises(SystemExit):
        main(["--help"])
    text = " ".join(capsys.readouterr().out.split())
    assert f"(default {ChaosConfig().backlog})" in text
