"""Which stream a submission belongs to.

A request may name its stream; otherwise the API key's default applies (BULK_KEYS).
Without BULK_QUEUE both streams share QUEUE: the stream is still recorded, but bulk
mail then waits in the same queue as transactional mail. The submitter
(submission.py) sends each stream's mail to its queue.
"""

from __future__ import annotations

from limbo_shared.schema import Stream

__all__ = ["stream_of"]


def stream_of(owner: str, requested: Stream | None, bulk_keys: frozenset[str]) -> Stream:
    if requested is not None:
        return requested
    return "bulk" if owner in bulk_keys else "transactional"
