"""Lanes: the FIFO group follows from the message id, and new ids take the lanes in turn."""

from __future__ import annotations

import uuid

from limbo_api.publisher import Lanes


def test_a_senders_new_ids_take_every_lane_in_turn() -> None:
    lanes = Lanes(16)
    seen = [lanes.lane_of(lanes.new_id("alice")) for _ in range(32)]
    first = seen[0]
    assert seen == [(first + i) % 16 for i in range(32)]


def test_new_ids_are_random_version_4_uuids() -> None:
    lanes = Lanes(16)
    ids = [lanes.new_id("alice") for _ in range(200)]
    assert len(set(ids)) == 200
    assert all(uuid.UUID(i).version == 4 and str(uuid.UUID(i)) == i for i in ids)


def test_the_group_is_a_function_of_the_id_alone() -> None:
    message_id = Lanes(16).new_id("alice")
    # Another process (or a retry) computes the same group for the same id.
    assert Lanes(16).group_id("alice", message_id) == Lanes(16).group_id("alice", message_id)
    assert Lanes(16).group_id("alice", message_id) == f"alice.{Lanes(16).lane_of(message_id)}"


def test_each_sender_keeps_its_own_turn() -> None:
    lanes = Lanes(4)
    alice = [lanes.lane_of(lanes.new_id("alice")) for _ in range(2)]
    lanes.new_id("bob")
    alice.append(lanes.lane_of(lanes.new_id("alice")))
    assert alice == [(alice[0] + i) % 4 for i in range(3)]


def test_any_lane_count_gives_ids_in_range() -> None:
    for count in (1, 3, 7, 1000):
        lanes = Lanes(count)
        assert all(0 <= lanes.lane_of(lanes.new_id("a")) < count for _ in range(50))
