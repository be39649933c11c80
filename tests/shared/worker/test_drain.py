from __future__ import annotations

from limbo_shared.worker.drain import SETTLE_RESERVE, grace_problem, plan_drain


def test_handlers_may_finish_until_the_reserve_before_the_deadline() -> None:
    plan = plan_drain(25)
    assert plan.finish_by == 25 - SETTLE_RESERVE
    assert plan.settle_by == 25


def test_a_short_grace_keeps_half_of_it_for_settling() -> None:
    plan = plan_drain(1)
    assert plan.finish_by == 0.5 and plan.settle_by == 1


def test_waiting_long_polls_are_given_only_a_moment() -> None:
    assert plan_drain(25).poll_patience <= 0.2
    assert plan_drain(0.2).poll_patience <= 0.1


def test_the_defaults_leave_every_send_time_to_end_by_itself() -> None:
    assert grace_problem(25, 15) is None


def test_a_grace_shorter_than_a_send_is_refused_naming_both_variables() -> None:
    problem = grace_problem(10, 15)
    assert problem is not None
    assert "SHUTDOWN_GRACE=10" in problem and "SEND_TIMEOUT" in problem


def test_the_grace_must_cover_the_claim_and_the_settle_too() -> None:
    assert grace_problem(16, 15) is not None
    assert grace_problem(18, 15) is None
