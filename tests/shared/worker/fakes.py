"""In-memory stand-ins for the consumer's queues and a provider, for in-process tests.

The queue keeps SQS's visible/in-flight bookkeeping and receive counts, and records
every call, so a test can say what the consumer asked of SQS.
"""

from __future__ import annotations

import asyncio
import itertools
import time
import uuid
from collections.abc import Awaitable, Callable, Sequence
from dataclasses import dataclass, field
from typing import Any

from limbo_shared.queue import OutgoingMessage, QueueUnavailable, ReceivedMessage
from limbo_shared.schema import MailRequest, QueuedMail

MAIL: dict[str, Any] = {
    "from": "a@example.com",
    "to": ["b@example.com"],
    "subject": "S",
    "message": "T",
}


def envelope(subject: str = "S") -> str:
    message_id = str(uuid.uuid4())
    return QueuedMail(
        id=message_id,
        owner="default",
        submitted_at=time.time(),
        mail=MailRequest.model_validate({**MAIL, "subject": subject}),
    ).to_json()


@dataclass
class _Stored:
    message_id: str
    body: str
    attributes: dict[str, dict[str, Any]]
    receive_count: int = 0
    visible_at: float = 0.0
    handle: str = ""
    group: str = "g"


@dataclass
class FakeQueue:
    name: str = "fake.fifo"
    url: str = "http://sqs.invalid/123/fake.fifo"
    redrive_max: int | None = None
    fifo: bool = False
    call_seconds: float = 0.0
    calls: list[tuple[str, Any]] = field(default_factory=list)
    stored: dict[str, _Stored] = field(default_factory=dict)
    deduplication_ids: dict[str, str] = field(default_factory=dict)
    _handles: itertools.count[int] = field(default_factory=itertools.count)

    def put(
        self,
        body: str,
        attributes: dict[str, dict[str, Any]] | None = None,
        group: str = "g",
    ) -> str:
        message_id = str(uuid.uuid4())
        self.stored[message_id] = _Stored(message_id, body, attributes or {}, group=group)
        return message_id

    async def send(self, message: OutgoingMessage) -> str:
        """SendMessage, with FIFO's deduplication (every id is remembered)."""
        self.calls.append(("send", message))
        if message.deduplication_id in self.deduplication_ids:
            return self.deduplication_ids[message.deduplication_id]
        message_id = self.put(message.body, dict(message.attributes), group=message.group_id)
        self.deduplication_ids[message.deduplication_id] = message_id
        return message_id

    @property
    def depth(self) -> int:
        return len(self.stored)

    def visible(self) -> list[_Stored]:
        """What a receive may return; with ``fifo``, nothing of a group that has a message
        in flight or waiting invisible (FIFO hands out a group's messages in order)."""
        now = time.monotonic()
        held = {m.group for m in self.stored.values() if m.visible_at > now} if self.fifo else set()
        return [m for m in self.stored.values() if m.visible_at <= now and m.group not in held]

    def by_handle(self, handle: str) -> _Stored | None:
        return next((m for m in self.stored.values() if m.handle == handle), None)

    def calls_of(self, method: str) -> list[Any]:
        return [arguments for name, arguments in self.calls if name == method]

    async def receive(
        self, *, max_messages: int, wait_seconds: int, visibility_timeout: int | None = None
    ) -> list[ReceivedMessage]:
        self.calls.append(("receive", max_messages))
        deadline = time.monotonic() + wait_seconds
        while True:
            ready = self.visible()[:max_messages]
            if ready or time.monotonic() >= deadline:
                break
            await asyncio.sleep(0.01)
        received = []
        for stored in ready:
            stored.receive_count += 1
            stored.handle = f"h{next(self._handles)}"
            stored.visible_at = time.monotonic() + (visibility_timeout or 30)
            received.append(
                ReceivedMessage(
                    message_id=stored.message_id,
                    receipt_handle=stored.handle,
                    body=stored.body,
                    attributes={
                        "ApproximateReceiveCount": str(stored.receive_count),
                        "MessageGroupId": stored.group,
                    },
                    message_attributes=dict(stored.attributes),
                )
            )
        return received

    async def delete_batch(self, receipt_handles: Sequence[str]) -> list[BaseException | None]:
        self.calls.append(("delete_batch", list(receipt_handles)))
        await asyncio.sleep(self.call_seconds)  # a real call takes a round trip
        for handle in receipt_handles:
            stored = self.by_handle(handle)
            if stored is not None:
                del self.stored[stored.message_id]
        return [None] * len(receipt_handles)

    async def change_visibility_batch(
        self, changes: Sequence[tuple[str, int]]
    ) -> list[BaseException | None]:
        self.calls.append(("change_visibility_batch", list(changes)))
        for handle, seconds in changes:
            stored = self.by_handle(handle)
            if stored is not None:
                stored.visible_at = time.monotonic() + seconds
        return [None] * len(changes)

    async def attributes(self, *names: str) -> dict[str, str]:
        if self.redrive_max is None:
            return {}
        return {"RedrivePolicy": f'{{"maxReceiveCount": {self.redrive_max}}}'}

    def visibility_changes(self) -> list[tuple[str, int]]:
        return [change for batch in self.calls_of("change_visibility_batch") for change in batch]

    def deleted(self) -> list[str]:
        return [handle for batch in self.calls_of("delete_batch") for handle in batch]


@dataclass
class FakeDeadLetters:
    """Refuses the first ``failures`` sends, as an unavailable queue would."""

    failures: int = 0
    sent: list[OutgoingMessage] = field(default_factory=list)
    attempts: int = 0

    async def send(self, message: OutgoingMessage) -> str:
        self.attempts += 1
        if self.attempts <= self.failures:
            raise QueueUnavailable("SQS send_message failed: ServiceUnavailable: try later")
        self.sent.append(message)
        return str(uuid.uuid4())

    def reasons(self) -> list[str]:
        return [m.attributes["limbo-reason"]["StringValue"] for m in self.sent]


Behaviour = Callable[[QueuedMail], Awaitable[str]]


class FakeProvider:
    """Answers each send with ``behaviour`` (default: accept); counts what is in flight."""

    name = "fake"
    server_address = "fake.invalid"

    def __init__(self, behaviour: Behaviour | None = None) -> None:
        self.behaviour = behaviour
        self.sent: list[QueuedMail] = []
        self.in_flight = 0
        self.most_in_flight = 0
        self.probes = 0
        self.probe_error: BaseException | None = None
        self.closed = False

    async def send(self, mail: QueuedMail) -> str:
        self.in_flight += 1
        self.most_in_flight = max(self.most_in_flight, self.in_flight)
        try:
            provider_id = await self.behaviour(mail) if self.behaviour else f"id-{mail.id}"
        finally:
            self.in_flight -= 1
        self.sent.append(mail)
        return provider_id

    async def probe(self) -> None:
        self.probes += 1
        if self.probe_error is not None:
            raise self.probe_error

    async def aclose(self) -> None:
        self.closed = True


async def wait_until(predicate: Callable[[], object], timeout: float = 10.0) -> None:
    deadline = time.monotonic() + timeout
    while not predicate():
        if time.monotonic() > deadline:
            raise AssertionError(f"condition not met within {timeout}s")
        await asyncio.sleep(0.01)
