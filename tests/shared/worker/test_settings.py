from __future__ import annotations

import pytest

from limbo_shared.config import ConfigError, load_settings
from limbo_shared.worker.settings import ConsumerSettings, WorkerSettings


@pytest.fixture(autouse=True)
def environment(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("QUEUE", "https://sqs.us-east-1.amazonaws.com/1/q.fifo")
    monkeypatch.setenv("REGION", "us-east-1")
    monkeypatch.setenv("DEADLETTERQUEUE", "https://sqs.us-east-1.amazonaws.com/1/d.fifo")
    for name in ("SHUTDOWN_GRACE", "SEND_TIMEOUT"):
        monkeypatch.delenv(name, raising=False)


def test_a_grace_too_short_for_a_send_stops_the_worker_naming_both_variables(
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    monkeypatch.setenv("SHUTDOWN_GRACE", "10")
    with pytest.raises(ConfigError) as raised:
        load_settings(WorkerSettings)
    message = str(raised.value)
    assert "SHUTDOWN_GRACE=10" in message and "SEND_TIMEOUT" in message


def test_a_grace_that_covers_the_send_is_accepted(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("SHUTDOWN_GRACE", "10")
    monkeypatch.setenv("SEND_TIMEOUT", "5")
    assert load_settings(WorkerSettings).shutdown_grace == 10


def test_a_worker_needs_a_dead_letter_queue_a_consumer_does_not(
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    monkeypatch.delenv("DEADLETTERQUEUE")
    assert load_settings(ConsumerSettings).deadletterqueue is None
    with pytest.raises(ConfigError, match="DEADLETTERQUEUE is not set"):
        load_settings(WorkerSettings)


def test_the_dead_letter_queue_must_be_fifo(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("DEADLETTERQUEUE", "https://sqs.us-east-1.amazonaws.com/1/d")
    with pytest.raises(ConfigError, match="DEADLETTERQUEUE is invalid"):
        load_settings(ConsumerSettings)
