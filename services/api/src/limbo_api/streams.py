"""Which stream a submission belongs to, and the publisher of that stream's queue.

A request may name its stream; otherwise the API key's default applies (BULK_KEYS).
Without BULK_QUEUE both streams share QUEUE: the stream is still recorded, but bulk
mail then waits in the same queue as transactional mail.
"""

from __future__ import annotations

from collections.abc import Mapping

from limbo_shared.schema import Stream

from .publisher import Publisher

__all__ = ["StreamRouter"]


class StreamRouter:
    def __init__(self, publishers: Mapping[Stream, Publisher], bulk_keys: frozenset[str]) -> None:
        self._publishers = dict(publishers)
        self._bulk_keys = bulk_keys

    def stream_of(self, owner: str, requested: Stream | None) -> Stream:
        if requested is not None:
            return requested
        return "bulk" if owner in self._bulk_keys else "transactional"

    def publisher(self, stream: Stream) -> Publisher:
        return self._publishers.get(stream) or self._publishers["transactional"]

    async def aclose(self) -> None:
        # One publisher may serve both streams: close each once.
        for publisher in {id(p): p for p in self._publishers.values()}.values():
            await publisher.aclose()
