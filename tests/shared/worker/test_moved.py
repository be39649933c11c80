"""A retry that leaves its FIFO group: the copy, its attempt count, when it is due."""

from __future__ import annotations

from limbo_shared.queue import ReceivedMessage
from limbo_shared.worker.moved import attempt_of, due_in, moved_copy


def received(
    receive_count: int = 1, attributes: dict[str, dict[str, str]] | None = None, sqs_id: str = "a"
) -> ReceivedMessage:
    return ReceivedMessage(
        message_id=sqs_id,
        receipt_handle="h",
        body="{}",
        attributes={"ApproximateReceiveCount": str(receive_count), "MessageGroupId": "k.3"},
        message_attributes=attributes or {},
    )


def test_a_message_never_moved_counts_its_receipts() -> None:
    assert attempt_of(received(receive_count=3)) == 3
    assert due_in(received()) == 0


def test_the_copy_leaves_the_group_and_carries_attempts_due_time_and_trace() -> None:
    trace = {"traceparent": {"DataType": "String", "StringValue": "00-abc-def-01"}}
    copy = moved_copy(received(receive_count=2, attributes=trace), attempts=2, delay=10, now=100)
    assert copy.group_id == "retry.a" and copy.group_id != "k.3"
    assert copy.body == "{}"
    assert copy.attributes["traceparent"] == trace["traceparent"]
    assert copy.attributes["limbo-attempts"]["StringValue"] == "2"
    assert float(copy.attributes["limbo-due"]["StringValue"]) == 110


def test_moving_the_same_receipt_twice_makes_the_same_deduplication_id() -> None:
    # A consumer that died between sending the copy and deleting the original moves the
    # original again: SQS drops the second copy as a duplicate.
    first = moved_copy(received(sqs_id="a"), attempts=1, delay=5)
    again = moved_copy(received(sqs_id="a", receive_count=2), attempts=2, delay=5)
    assert first.deduplication_id == again.deduplication_id
    assert moved_copy(received(sqs_id="b"), attempts=1, delay=5).deduplication_id != (
        first.deduplication_id
    )


def as_received(copy_attributes: dict[str, dict[str, str]], receive_count: int) -> ReceivedMessage:
    return received(receive_count=receive_count, attributes=copy_attributes, sqs_id="copy")


def test_the_attempt_count_survives_the_move_and_the_early_receipt_is_not_an_attempt() -> None:
    copy = moved_copy(received(receive_count=2), attempts=2, delay=10, now=100)
    early = as_received(copy.attributes, receive_count=1)
    assert due_in(early, now=101) == 9
    # Received when due, after the early receipt that only deferred it: attempt 3.
    assert attempt_of(as_received(copy.attributes, receive_count=2)) == 3
    # Received first when already due (the queue was backlogged): attempt 3 as well.
    assert attempt_of(as_received(copy.attributes, receive_count=1)) == 3
    assert due_in(early, now=111) < 0


def test_a_copy_moved_again_keeps_counting() -> None:
    copy = moved_copy(received(receive_count=1), attempts=1, delay=5, now=0)
    second = moved_copy(as_received(copy.attributes, 2), attempts=2, delay=10, now=10)
    assert attempt_of(as_received(second.attributes, 2)) == 3
    assert sum(1 for name in second.attributes if name == "limbo-attempts") == 1


def test_the_copy_stays_within_sqs_attribute_limit() -> None:
    many = {f"a{i}": {"DataType": "String", "StringValue": "x"} for i in range(10)}
    copy = moved_copy(received(attributes=many), attempts=1, delay=1)
    assert len(copy.attributes) <= 10
    assert "limbo-attempts" in copy.attributes and "limbo-due" in copy.attributes
