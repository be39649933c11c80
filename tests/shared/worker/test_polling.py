"""The poll policy: one long poll at rest, more while receives come back full."""

from __future__ import annotations

import asyncio

import pytest

from limbo_shared.worker.polling import PollPolicy


def test_at_rest_one_poll_is_open() -> None:
    policy = PollPolicy(most=7, batch=10)
    assert [policy.may_poll(i) for i in range(7)] == [True] + [False] * 6
    for _ in range(5):
        policy.received(0)
    assert policy.wanted == 1


def test_full_batches_double_the_polls_up_to_the_most() -> None:
    policy = PollPolicy(most=7, batch=10)
    seen = []
    for _ in range(4):
        policy.received(10)
        seen.append(policy.wanted)
    assert seen == [2, 4, 7, 7]
    assert all(policy.may_poll(i) for i in range(7))


def test_short_batches_close_polls_one_at_a_time() -> None:
    policy = PollPolicy(most=7, batch=10)
    for _ in range(3):
        policy.received(10)
    seen = []
    for count in (3, 0, 9, 0, 0, 0, 0, 0):
        policy.received(count)
        seen.append(policy.wanted)
    assert seen == [6, 5, 4, 3, 2, 1, 1, 1]


async def test_a_waiting_poller_starts_once_it_is_wanted() -> None:
    policy = PollPolicy(most=3, batch=10)
    await asyncio.wait_for(policy.wait_turn(0), 1)  # poller 0 never waits
    third = asyncio.ensure_future(policy.wait_turn(2))
    policy.received(10)  # two wanted: not yet the third
    await asyncio.sleep(0.01)
    assert not third.done()
    policy.received(10)
    await asyncio.wait_for(third, 1)


def test_nonsense_bounds_are_refused() -> None:
    with pytest.raises(ValueError):
        PollPolicy(most=0, batch=10)


def test_a_short_batch_answered_at_once_waits_for_the_rest_of_the_burst() -> None:
    policy = PollPolicy(most=7, batch=10, quick=0.02, gather=0.03)
    assert policy.pause_after(4, took=0.005, in_hand=4) == 0.03


def test_no_pause_after_a_full_an_empty_or_a_waited_for_receive() -> None:
    policy = PollPolicy(most=7, batch=10, quick=0.02, gather=0.03)
    assert policy.pause_after(10, took=0.005, in_hand=10) == 0.0, "full: ask again at once"
    assert policy.pause_after(0, took=0.005, in_hand=0) == 0.0, "empty: nothing to gather"
    # A trickle: the poll was open before the message came, so it waited for it.
    assert policy.pause_after(1, took=0.08, in_hand=1) == 0.0


def test_no_pause_while_draining_a_backlog() -> None:
    # Short receives while dozens are in hand: the FIFO groups are busy, not a burst.
    policy = PollPolicy(most=7, batch=10, quick=0.02, gather=0.03)
    assert policy.pause_after(4, took=0.005, in_hand=60) == 0.0


def test_a_full_receive_that_waited_for_its_batch_opens_no_more_polls() -> None:
    # A burst published in batches of ten: each batch fills the one poll waiting for it,
    # and a second open poll would only take a share of the next batch.
    policy = PollPolicy(most=7, batch=10, quick=0.02)
    for _ in range(3):
        policy.received(10, took=0.05)
    assert policy.wanted == 1
    policy.received(10, took=0.005)  # full at once: a backlog
    assert policy.wanted == 2
    policy.received(10, took=0.05)
    assert policy.wanted == 2


def test_a_short_receive_that_waited_closes_every_extra_poll() -> None:
    policy = PollPolicy(most=7, batch=10, quick=0.02)
    for _ in range(3):
        policy.received(10, took=0.005)
    assert policy.wanted == 7
    policy.received(4, took=0.005)  # short at once: the groups with messages are busy
    assert policy.wanted == 6
    policy.received(4, took=0.05)  # short after waiting: the queue was empty
    assert policy.wanted == 1
