"""The API's settings: each knob validated, errors naming the variable."""

from __future__ import annotations

import pytest

from limbo_api.settings import ApiSettings
from limbo_shared.config import ConfigError, load_settings


@pytest.fixture(autouse=True)
def environment(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("QUEUE", "https://sqs.us-east-1.amazonaws.com/1/q.fifo")
    monkeypatch.setenv("REGION", "us-east-1")
    monkeypatch.setenv("AUTH", "disabled")
    monkeypatch.delenv("PUBLISH_LINGER", raising=False)


def test_a_burst_batch_waits_for_company_20_ms_by_default() -> None:
    assert load_settings(ApiSettings).publish_linger == 0.02


@pytest.mark.parametrize("value", ["-0.01", "2", "soon"])
def test_a_publish_linger_out_of_range_stops_the_api_naming_it(
    monkeypatch: pytest.MonkeyPatch, value: str
) -> None:
    monkeypatch.setenv("PUBLISH_LINGER", value)
    with pytest.raises(ConfigError, match="PUBLISH_LINGER"):
        load_settings(ApiSettings)


def test_a_publish_linger_of_zero_turns_it_off(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("PUBLISH_LINGER", "0")
    assert load_settings(ApiSettings).publish_linger == 0.0
