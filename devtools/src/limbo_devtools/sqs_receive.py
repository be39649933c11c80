"""ReceiveMessage in limbo-moto: one scan of a queue at a time, and waits that sleep.

moto's SQS backend checks that a message is visible and then marks it received, with no
lock between the two: two receives on one queue at the same moment can both take the same
message (seen in tests/reliability/test_shutdown.py: one FIFO message sent twice, both
copies on its second receive). Real SQS never hands a message to two consumers inside its
visibility timeout, and limbo's exactly-once tests rely on that. So each receive holds
its queue's condition (moto's own, reentrant: the lock its sends notify through) while
it scans.

While a long poll waits, moto waits on that condition for "any visible message", which on
a FIFO queue is also true of messages whose group is in flight: such a poll rescanned
without pause until its wait ran out, a core's worth of CPU per waiting poll. A wait now
sleeps on the condition until a send notifies it or ``RESCAN_SECONDS`` pass (visibility
running out and deletes do not notify), and, waiting, lets other receives scan.
"""

from __future__ import annotations

import functools
from typing import Any

from moto.sqs.models import Queue, SQSBackend

__all__ = ["RESCAN_SECONDS", "serialise_receives"]

# How soon a waiting poll sees a message that became receivable without a send: its
# visibility ran out, or the in-flight message of its FIFO group was deleted.
RESCAN_SECONDS = 0.05


def serialise_receives() -> None:
    """Patch moto's SQS backend in this process (idempotent)."""
    receive = SQSBackend.receive_message
    if getattr(receive, "limbo_serialised", False):
        return

    @functools.wraps(receive)
    def receive_message(self: SQSBackend, queue_name: str, *args: Any, **kwargs: Any) -> Any:
        queue = self.get_queue(queue_name)
        with queue._messages_lock:
            return receive(self, queue_name, *args, **kwargs)

    def wait_for_messages(self: Queue, timeout: int) -> None:
        # Called with the condition held (by receive_message above): waiting releases it.
        with self._messages_lock:
            self._messages_lock.wait(timeout=min(timeout, RESCAN_SECONDS))

    receive_message.limbo_serialised = True  # type: ignore[attr-defined]
    setattr(SQSBackend, "receive_message", receive_message)  # noqa: B010 - a patch
    setattr(Queue, "wait_for_messages", wait_for_messages)  # noqa: B010 - a patch
