"""The CI-sized fault-injection run: 500 emails, 3 workers killed at random, a flaky provider.

The same harness as ``limbo-chaos`` (devtools/src/limbo_devtools/chaos/), which runs
the 10,000-email version and prints its figures; here the invariants are asserted.
"""

from __future__ import annotations

import re
from collections.abc import Iterator
from pathlib import Path

import pytest

from limbo_devtools.chaos import ChaosConfig, ChaosReport, ChaosRun

pytestmark = pytest.mark.slow


@pytest.fixture(scope="module")
def chaos(
    moto_endpoint: str, tmp_path_factory: pytest.TempPathFactory
) -> Iterator[tuple[ChaosReport, ChaosRun]]:
    config = ChaosConfig(
        emails=500,
        endpoint=moto_endpoint,
        # Fixed seeds: the sink's n-th answer is the same every run, so every kind of
        # failure is injected at least once (counted below), and the kills repeat.
        seed=7,
        kill_every=(2.0, 4.0),
        settle_timeout=150,
        logs=tmp_path_factory.mktemp("chaos"),
    )
    run = ChaosRun(config)
    report = run.run()
    print("\n" + report.render())
    yield report, run


def test_every_accepted_email_is_delivered_or_dead_lettered_with_its_reason(
    chaos: tuple[ChaosReport, ChaosRun],
) -> None:
    report, _ = chaos
    assert report.problems() == []
    assert report.accepted == 500
    assert report.lost == 0
    # (A kill can make one email both delivered and, on its redelivery, rejected.)
    assert (
        report.delivered + report.dead_lettered - report.delivered_and_dead_lettered
        == report.accepted
    )
    # Only the injected permanent rejections end in the dead-letter queue.
    assert report.unexpected_dead_letters == []
    assert 0 < report.dead_lettered <= report.injected["400"]


def test_the_run_really_injected_every_fault(chaos: tuple[ChaosReport, ChaosRun]) -> None:
    report, _ = chaos
    # A run without kills or failures would prove nothing.
    assert report.kills >= 3
    for kind in ("500", "429", "slow", "400"):
        assert report.injected.get(kind, 0) > 0, f"no {kind} was injected"


def test_duplicates_are_counted_and_bounded_by_the_kills(
    chaos: tuple[ChaosReport, ChaosRun],
) -> None:
    report, _ = chaos
    # Tracking off: SQS is at-least-once and Mailgun has no idempotency key. Each kill can
    # repeat at most the sends the killed worker had in flight; an injected slow answer
    # is accepted by the provider after the worker gave up, and the retry repeats it.
    assert report.duplicated <= report.duplicate_bound
    assert report.unaccepted_deliveries == 0


def test_no_secret_appears_in_any_log_line_of_the_run(
    chaos: tuple[ChaosReport, ChaosRun],
) -> None:
    _, run = chaos
    text = run.log_text()
    assert "mailgun answered 429" in text  # the logs do cover the failures
    for name, value in run.secrets().items():
        assert value not in text, f"{name} appears in the logs"
    # Nor anything shaped like a Mailgun key or a Basic/AWS4 authorization header.
    assert not re.search(r"key-[0-9a-f]{32}", text)
    assert not re.search(r"(?i)authorization\W+(basic|aws4)", text)
    assert len(list(Path(run.logs).glob("limbo-*.log"))) >= 4
