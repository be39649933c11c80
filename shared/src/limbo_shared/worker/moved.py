"""Retries that leave their FIFO group: a failed message is re-sent as a copy in a group
of its own, so its backoff holds nothing but itself.

FIFO delivers a group's messages in order, so a message left invisible in place for its
backoff (5 s, 10 s, ... 15 min) holds every later message of its group as long. Its copy
instead sits in the group ``retry.<id>`` and carries what the move must not lose: the
attempts made so far (``limbo-attempts``) and when it is due (``limbo-due``, epoch
seconds). FIFO queues take no per-message delay, so a copy received before it is due is
simply made invisible until then (a ``Defer``, not an attempt).

Deferrals (no send-rate token in time, another worker's lease) move the same way, with
the attempts made before that receipt: SQS counts every receive, so a deferral left in
place would be taken for an attempt by the next receipt and by the redrive policy.

The copy's deduplication id derives from the SQS id of the message it replaces: if the
consumer dies between sending the copy and deleting the original, the original comes
back and a second move within SQS's 5-minute window is dropped by SQS; after that the
status store's claim still stops a second send (as for any redelivery).
"""

from __future__ import annotations

import time

from ..propagation import MAX_MESSAGE_ATTRIBUTES
from ..queue import OutgoingMessage, ReceivedMessage

__all__ = ["ATTEMPTS_ATTRIBUTE", "DUE_ATTRIBUTE", "attempt_of", "due_in", "moved_copy"]

ATTEMPTS_ATTRIBUTE = "limbo-attempts"
DUE_ATTRIBUTE = "limbo-due"


def _number(message: ReceivedMessage, name: str) -> float | None:
    raw = message.message_attributes.get(name, {}).get("StringValue")
    try:
        return float(raw) if raw is not None else None
    except ValueError:
        return None


def attempt_of(message: ReceivedMessage) -> int:
    """Which attempt this receipt is: the attempts before the move plus this copy's own.

    A copy's first receipt is normally the early one that only defers it, so the
    copy's receive count overstates its attempts by one once it has been received
    again. (A copy whose only extra receipt was a crash mid-send is thus counted one
    attempt short; the queue's redrive limit still bounds every copy.)
    """
    before = _number(message, ATTEMPTS_ATTRIBUTE)
    if before is None:
        return message.receive_count
    own = message.receive_count - 1 if message.receive_count > 1 else 1
    return int(before) + own


def due_in(message: ReceivedMessage, now: float | None = None) -> float:
    """Seconds until a moved copy is due (0 or less: due now, or never moved)."""
    due = _number(message, DUE_ATTRIBUTE)
    if due is None:
        return 0.0
    return due - (time.time() if now is None else now)


def moved_copy(
    message: ReceivedMessage, *, attempts: int, delay: float, now: float | None = None
) -> OutgoingMessage:
    """The copy that replaces ``message`` after ``attempts`` attempts, due in ``delay`` s."""
    due = (time.time() if now is None else now) + delay
    own = {
        ATTEMPTS_ATTRIBUTE: {"DataType": "Number", "StringValue": str(attempts)},
        DUE_ATTRIBUTE: {"DataType": "Number", "StringValue": f"{due:.3f}"},
    }
    carried = sorted(
        (item for item in message.message_attributes.items() if item[0] not in own),
        key=lambda item: item[0] not in ("traceparent", "tracestate"),
    )
    room = MAX_MESSAGE_ATTRIBUTES - len(own)
    return OutgoingMessage(
        body=message.body,
        group_id=f"retry.{message.message_id}",
        deduplication_id=f"{message.message_id}.moved",
        attributes={**dict(carried[:room]), **own},
    )
