"""A retry after an unanswered send asks the provider first (worker/resend.py), run by a
real ``Worker`` against in-memory fakes."""

from __future__ import annotations

import asyncio
import time
from collections.abc import Callable

import pytest

from limbo_shared.provider import TransientProviderError
from limbo_shared.schema import QueuedMail
from limbo_shared.store import Claim, ClaimOutcome, MessageRecord, Status
from limbo_shared.worker import Worker
from limbo_shared.worker.consumer import Consumer
from limbo_shared.worker.tracking import TrackerClaim

from .conftest import Running, worker_settings
from .fakes import FakeDeadLetters, FakeProvider, FakeQueue, envelope, wait_until
from .test_mail import FakeTracker

Start = Callable[[Consumer], Running]


class LateProvider(FakeProvider):
    """Accepts every send at once but answers the first one too late, as a provider that
    accepts after SEND_TIMEOUT does; its lookup knows what it accepted."""

    def __init__(self, *, first_answer: str = "late", lookup: str = "works") -> None:
        super().__init__(self._answer)
        self.first_answer = first_answer
        self.lookup = lookup
        self.accepted: dict[str, str] = {}
        self.calls = 0
        self.lookups = 0

    async def _answer(self, mail: QueuedMail) -> str:
        self.calls += 1
        if self.calls == 1 and self.first_answer == "500":
            raise TransientProviderError("fake answered 500")
        self.accepted[mail.id] = f"id-{mail.id}-{self.calls}"
        if self.calls == 1:
            await asyncio.sleep(60)
        return self.accepted[mail.id]

    async def find_accepted(self, mail: QueuedMail) -> str | None:
        self.lookups += 1
        if self.lookup == "fails":
            raise TransientProviderError("fake events answered 503")
        if self.lookup == "hangs":
            await asyncio.sleep(60)
        return self.accepted.get(mail.id)


class AnotherReplicasRecord(FakeTracker):
    """A claim whose record says the previous send (by another worker) got no answer."""

    async def claim(self, mail: QueuedMail) -> TrackerClaim:
        now = time.time()
        record = MessageRecord(
            id=mail.id,
            owner=mail.owner,
            status=Status.SENDING,
            recipients=1,
            created_at=now,
            updated_at=now,
            expires_at=int(now) + 3600,
            attempts=2,
            last_error="no answer within SEND_TIMEOUT=15s",
        )
        return TrackerClaim(Claim(ClaimOutcome.CLAIMED, mail.id, record=record))


def start(
    running: Start, provider: FakeProvider, queue: FakeQueue, tracker: FakeTracker
) -> Running:
    settings = worker_settings(send_timeout=0.3, retry_base_seconds=1)
    return running(Worker(settings, provider, queue, FakeDeadLetters(), tracker=tracker))


async def test_a_retry_after_an_unanswered_send_finds_it_accepted_and_does_not_resend(
    running: Start,
) -> None:
    queue, provider, tracker = FakeQueue(), LateProvider(), FakeTracker()
    queue.put(envelope())
    run = start(running, provider, queue, tracker)
    await wait_until(lambda: queue.depth == 0)
    await run.stop()
    [accepted] = provider.accepted.values()
    assert provider.calls == 1 and provider.lookups == 1
    assert tracker.records == [
        ("retrying", "no answer within SEND_TIMEOUT=0.3s"),
        ("sent", accepted),
    ]


async def test_the_record_says_so_when_another_worker_sent_without_an_answer(
    running: Start,
) -> None:
    provider = LateProvider(first_answer="500")
    queue, tracker = FakeQueue(), AnotherReplicasRecord()
    body = envelope()
    queue.put(body)
    mail = QueuedMail.from_json(body)
    provider.accepted[mail.id] = "id-by-another-worker"
    run = start(running, provider, queue, tracker)
    await wait_until(lambda: queue.depth == 0)
    await run.stop()
    assert provider.calls == 0 and provider.lookups == 1
    assert tracker.records == [("sent", "id-by-another-worker")]


@pytest.mark.parametrize("lookup", ["fails", "hangs"])
async def test_a_failed_or_slow_lookup_falls_back_to_sending_again(
    running: Start, lookup: str
) -> None:
    queue, provider, tracker = FakeQueue(), LateProvider(lookup=lookup), FakeTracker()
    queue.put(envelope())
    run = start(running, provider, queue, tracker)
    await wait_until(lambda: queue.depth == 0)
    await run.stop()
    # The duplicate the lookup could not rule out: a second send, never a lost email.
    assert provider.calls == 2 and provider.lookups == 1
    assert tracker.records[-1][0] == "sent"


async def test_a_retry_after_an_answered_failure_costs_no_lookup(running: Start) -> None:
    queue, provider, tracker = FakeQueue(), LateProvider(first_answer="500"), FakeTracker()
    queue.put(envelope())
    run = start(running, provider, queue, tracker)
    await wait_until(lambda: queue.depth == 0)
    await run.stop()
    assert provider.calls == 2 and provider.lookups == 0
    assert tracker.records[0] == ("retrying", "fake answered 500")
