"""The routing policy as ROUTING gives it, and when a fallback takes mail (no I/O)."""

from __future__ import annotations

import pytest

from limbo_shared.config import ConfigError, load_settings
from limbo_shared.store.health import ProviderHealth
from limbo_shared.worker.routing import Failover, FailoverRules, parse_routing
from limbo_shared.worker.settings import WorkerSettings

HEALTHY = ProviderHealth(replicas=2, paused=False, sends=40, errors=1)
PAUSED = ProviderHealth(replicas=2, paused=True, sends=0, errors=0)
RULES = FailoverRules(error_rate=0.5, min_sends=10, hold=30.0, absent_after=15.0)


def fallback() -> Failover:
    return Failover(("ses", "mailgun"), "mailgun", RULES)


# -- the policy ------------------------------------------------------------------------


def test_providers_are_given_in_order_of_preference() -> None:
    assert parse_routing("ses>mailgun") == ("ses", "mailgun")
    assert parse_routing(" SES > mailgun > other ") == ("ses", "mailgun", "other")


@pytest.mark.parametrize(
    ("value", "problem"),
    [
        ("ses:80,mailgun:20", "weighted routing"),
        ("ses", "at least two providers"),
        ("ses>ses", "names a provider twice"),
        ("ses>mail gun", "not a provider name"),
        ("ses>>mailgun", "not a provider name"),
    ],
)
def test_a_policy_limbo_cannot_follow_is_refused_saying_why(value: str, problem: str) -> None:
    with pytest.raises(ValueError, match=problem):
        parse_routing(value)


@pytest.fixture
def environment(monkeypatch: pytest.MonkeyPatch) -> pytest.MonkeyPatch:
    monkeypatch.setenv("QUEUE", "https://sqs.us-east-1.amazonaws.com/1/q.fifo")
    monkeypatch.setenv("REGION", "us-east-1")
    monkeypatch.setenv("DEADLETTERQUEUE", "https://sqs.us-east-1.amazonaws.com/1/d.fifo")
    monkeypatch.setenv("STATUS_TABLE", "limbo-status")
    return monkeypatch


def test_routing_is_read_once_and_normalised(environment: pytest.MonkeyPatch) -> None:
    environment.setenv("ROUTING", "SES>Mailgun")
    settings = load_settings(WorkerSettings)
    assert settings.routing == "ses>mailgun" and settings.policy == ("ses", "mailgun")
    environment.setenv("ROUTING", "")
    assert load_settings(WorkerSettings).policy is None


def test_a_bad_policy_stops_the_worker_naming_routing(environment: pytest.MonkeyPatch) -> None:
    environment.setenv("ROUTING", "ses:80,mailgun:20")
    with pytest.raises(ConfigError, match="ROUTING is invalid: weighted routing"):
        load_settings(WorkerSettings)


def test_routing_needs_the_status_table(environment: pytest.MonkeyPatch) -> None:
    environment.setenv("ROUTING", "ses>mailgun")
    environment.delenv("STATUS_TABLE")
    with pytest.raises(ConfigError, match="ROUTING needs STATUS_TABLE"):
        load_settings(WorkerSettings)


def test_a_worker_whose_provider_the_policy_does_not_name_is_refused() -> None:
    with pytest.raises(ValueError, match=r"does not name this worker's provider \(other\)"):
        Failover(("ses", "mailgun"), "other")


# -- the decision ----------------------------------------------------------------------


def test_the_first_provider_always_takes_mail() -> None:
    primary = Failover(("ses", "mailgun"), "ses", RULES)
    assert primary.active
    decision = primary.decide(0.0, {}, mail_waiting=True)
    assert decision.active and decision.reason == "first_choice" and decision.sender == "ses"


def test_a_fallback_stands_by_while_its_primary_is_healthy() -> None:
    worker = fallback()
    assert not worker.active
    decision = worker.decide(0.0, {"ses": HEALTHY}, mail_waiting=True)
    assert not decision.active
    assert decision.reason == "ses_healthy" and decision.sender == "ses"


def test_a_paused_primary_hands_the_mail_to_the_fallback_at_once() -> None:
    decision = fallback().decide(0.0, {"ses": PAUSED}, mail_waiting=False)
    assert decision.active and decision.reason == "ses_paused" and decision.sender == "mailgun"


@pytest.mark.parametrize(
    ("sends", "errors", "active"),
    [(20, 10, True), (20, 9, False), (9, 9, False), (10, 5, True)],
)
def test_a_primary_failing_half_its_sends_counts_as_down(
    sends: int, errors: int, active: bool
) -> None:
    health = ProviderHealth(replicas=1, paused=False, sends=sends, errors=errors)
    decision = fallback().decide(0.0, {"ses": health}, mail_waiting=True)
    assert decision.active is active
    assert decision.reason == ("ses_errors" if active else "ses_healthy")


def test_a_silent_primary_is_not_down_while_no_mail_waits() -> None:
    # KEDA scaled the primary to zero on an empty queue: nothing to take over.
    worker = fallback()
    for now in (0.0, 60.0, 600.0):
        assert not worker.decide(now, {"ses": None}, mail_waiting=False).active


def test_a_silent_primary_with_mail_waiting_is_down_after_the_grace() -> None:
    worker = fallback()
    assert not worker.decide(0.0, {"ses": None}, mail_waiting=True).active
    assert not worker.decide(14.0, {"ses": None}, mail_waiting=True).active
    decision = worker.decide(15.0, {"ses": None}, mail_waiting=True)
    assert decision.active and decision.reason == "ses_absent"


def test_the_grace_starts_again_once_the_primary_reports() -> None:
    worker = fallback()
    worker.decide(0.0, {"ses": None}, mail_waiting=True)
    worker.decide(10.0, {"ses": HEALTHY}, mail_waiting=True)
    assert not worker.decide(20.0, {"ses": None}, mail_waiting=True).active


def test_the_fallback_stands_down_once_the_primary_has_held_healthy() -> None:
    worker = fallback()
    worker.decide(0.0, {"ses": PAUSED}, mail_waiting=True)
    recovering = worker.decide(5.0, {"ses": HEALTHY}, mail_waiting=True)
    assert recovering.active and recovering.reason == "ses_recovering"
    assert worker.decide(34.0, {"ses": HEALTHY}, mail_waiting=True).active
    back = worker.decide(35.0, {"ses": HEALTHY}, mail_waiting=True)
    assert not back.active and back.reason == "ses_healthy" and back.sender == "ses"


def test_a_primary_that_fails_again_while_recovering_starts_the_hold_over() -> None:
    worker = fallback()
    worker.decide(0.0, {"ses": PAUSED}, mail_waiting=True)
    worker.decide(5.0, {"ses": HEALTHY}, mail_waiting=True)
    worker.decide(20.0, {"ses": PAUSED}, mail_waiting=True)
    worker.decide(21.0, {"ses": HEALTHY}, mail_waiting=True)
    assert worker.decide(50.0, {"ses": HEALTHY}, mail_waiting=True).active
    assert not worker.decide(51.0, {"ses": HEALTHY}, mail_waiting=True).active


def test_a_third_provider_takes_mail_only_when_both_before_it_are_down() -> None:
    third = Failover(("ses", "mailgun", "other"), "other", RULES)
    waiting = {"mail_waiting": True}
    assert not third.decide(0.0, {"ses": PAUSED, "mailgun": HEALTHY}, **waiting).active
    assert third.decide(0.0, {"ses": PAUSED, "mailgun": PAUSED}, **waiting).active
    standby = third.decide(40.0, {"ses": HEALTHY, "mailgun": PAUSED}, **waiting)
    assert standby.reason == "ses_recovering"
