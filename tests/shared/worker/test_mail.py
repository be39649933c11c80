"""The sending workers' handler, run by a real ``Worker`` against in-memory fakes."""

from __future__ import annotations

import asyncio
import json
from collections.abc import Callable
from typing import Any

from limbo_shared.provider import (
    PermanentProviderError,
    ProviderUnavailable,
    TransientProviderError,
)
from limbo_shared.queue import ReceivedMessage
from limbo_shared.schema import QueuedMail
from limbo_shared.store import Claim, ClaimOutcome, Status
from limbo_shared.worker import Worker
from limbo_shared.worker.consumer import Consumer, Unavailable
from limbo_shared.worker.health import CallWindow
from limbo_shared.worker.mail import MailHandler
from limbo_shared.worker.tracking import TrackerClaim

from .conftest import Running, worker_settings
from .fakes import FakeDeadLetters, FakeProvider, FakeQueue, envelope, wait_until

Start = Callable[[Consumer], Running]


class FakeTracker:
    """Claims as told and records what the handler writes."""

    enabled = True

    def __init__(self, outcome: ClaimOutcome = ClaimOutcome.CLAIMED, busy_for: float = 0) -> None:
        self.outcome = outcome
        self.busy_for = busy_for
        self.unavailable: str | None = None
        self.records: list[tuple[str, str]] = []

    async def claim(self, mail: QueuedMail) -> TrackerClaim:
        if self.unavailable is not None:
            return TrackerClaim(None, unavailable=self.unavailable)
        return TrackerClaim(Claim(self.outcome, mail.id, busy_for=self.busy_for))

    async def sent(self, claim: TrackerClaim, provider_message_id: str) -> None:
        self.records.append(("sent", provider_message_id))

    async def unsent(self, claim: TrackerClaim, status: Status, error: str) -> None:
        self.records.append((status.value, error))

    async def probe(self) -> None:
        if self.unavailable is not None:
            raise RuntimeError(self.unavailable)

    async def aclose(self) -> None:
        return None


def worker(
    provider: FakeProvider,
    queue: FakeQueue,
    dead: FakeDeadLetters,
    tracker: Any = None,
    **settings: Any,
) -> Worker:
    return Worker(worker_settings(**settings), provider, queue, dead, tracker=tracker)


async def test_an_accepted_send_is_recorded_then_deleted(running: Start) -> None:
    queue, dead, provider, tracker = FakeQueue(), FakeDeadLetters(), FakeProvider(), FakeTracker()
    body = envelope("hello")
    queue.put(body)
    run = running(worker(provider, queue, dead, tracker))
    await wait_until(lambda: queue.depth == 0)
    await run.stop()
    [mail] = provider.sent
    assert mail.mail.subject == "hello"
    assert tracker.records == [("sent", f"id-{mail.id}")]


async def test_a_transient_failure_is_retried_after_the_computed_delay(running: Start) -> None:
    async def throttled(mail: QueuedMail) -> str:
        raise TransientProviderError("fake answered 429", retry_after=7.5)

    queue, dead, tracker = FakeQueue(), FakeDeadLetters(), FakeTracker()
    queue.put(envelope())
    run = running(worker(FakeProvider(throttled), queue, dead, tracker, retry_base_seconds=1))
    await wait_until(lambda: queue.visibility_changes())
    await run.stop()
    # Backoff from 1 s at the first attempt is ~1 s; the provider's Retry-After wins.
    assert [seconds for _, seconds in queue.visibility_changes()] == [8]
    assert tracker.records == [("retrying", "fake answered 429")]
    assert queue.depth == 1 and dead.sent == []


async def test_the_last_transient_failure_is_recorded_failed_and_dead_lettered(
    running: Start,
) -> None:
    async def failing(mail: QueuedMail) -> str:
        raise TransientProviderError("fake answered 503")

    queue, dead, tracker = FakeQueue(), FakeDeadLetters(), FakeTracker()
    queue.put(envelope())
    run = running(worker(FakeProvider(failing), queue, dead, tracker, max_attempts=1))
    await wait_until(lambda: queue.depth == 0)
    await run.stop()
    assert tracker.records == [("failed", "fake answered 503")]
    assert dead.reasons() == ["gave up after 1 attempts: fake answered 503"]


async def test_a_permanent_rejection_is_dead_lettered_at_once_with_its_reason(
    running: Start,
) -> None:
    async def rejecting(mail: QueuedMail) -> str:
        raise PermanentProviderError("fake answered 400: bad address")

    queue, dead, tracker = FakeQueue(), FakeDeadLetters(), FakeTracker()
    body = envelope()
    queue.put(body)
    run = running(worker(FakeProvider(rejecting), queue, dead, tracker))
    await wait_until(lambda: queue.depth == 0)
    await run.stop()
    assert dead.reasons() == ["rejected by fake: fake answered 400: bad address"]
    assert dead.sent[0].body == body
    assert tracker.records == [("rejected", "fake answered 400: bad address")]
    assert queue.visibility_changes() == []


async def test_an_unparseable_body_is_dead_lettered_without_calling_the_provider(
    running: Start,
) -> None:
    queue, dead, provider = FakeQueue(), FakeDeadLetters(), FakeProvider()
    queue.put("not json at all")
    queue.put(json.dumps({"id": "x", "mail": {}}))
    run = running(worker(provider, queue, dead))
    await wait_until(lambda: queue.depth == 0)
    await run.stop()
    reasons = dead.reasons()
    assert len(reasons) == 2 and all(r.startswith("unparseable message: ") for r in reasons)
    assert provider.sent == []


async def test_a_send_without_an_answer_within_send_timeout_is_retried(running: Start) -> None:
    async def hanging(mail: QueuedMail) -> str:
        await asyncio.sleep(60)
        return "never"

    queue, dead, tracker = FakeQueue(), FakeDeadLetters(), FakeTracker()
    queue.put(envelope())
    run = running(worker(FakeProvider(hanging), queue, dead, tracker, send_timeout=0.2))
    await wait_until(lambda: queue.visibility_changes())
    await run.stop()
    assert tracker.records == [("retrying", "no answer within SEND_TIMEOUT=0.2s")]


async def test_an_unexpected_provider_exception_keeps_only_its_class(running: Start) -> None:
    async def broken(mail: QueuedMail) -> str:
        raise ValueError("Authorization: Basic YXBpOmtleS1zZWNyZXQ=")

    queue, dead, tracker = FakeQueue(), FakeDeadLetters(), FakeTracker()
    queue.put(envelope())
    run = running(worker(FakeProvider(broken), queue, dead, tracker, max_attempts=1))
    await wait_until(lambda: dead.sent)
    await run.stop()
    assert tracker.records == [("failed", "unexpected error: ValueError")]
    assert "YXBp" not in dead.reasons()[0]


async def test_an_already_sent_message_is_deleted_without_sending(running: Start) -> None:
    queue, dead, provider = FakeQueue(), FakeDeadLetters(), FakeProvider()
    queue.put(envelope())
    run = running(worker(provider, queue, dead, FakeTracker(ClaimOutcome.ALREADY_SENT)))
    await wait_until(lambda: queue.depth == 0)
    await run.stop()
    assert provider.sent == []


async def test_a_message_being_sent_elsewhere_waits_for_the_lease(running: Start) -> None:
    queue, dead, provider = FakeQueue(), FakeDeadLetters(), FakeProvider()
    queue.put(envelope())
    run = running(worker(provider, queue, dead, FakeTracker(ClaimOutcome.BUSY, busy_for=11.5)))
    await wait_until(lambda: queue.visibility_changes())
    await run.stop()
    assert [seconds for _, seconds in queue.visibility_changes()] == [13]
    assert provider.sent == [] and dead.sent == []


async def test_sends_in_flight_are_bounded_by_the_concurrency(running: Start) -> None:
    async def slow(mail: QueuedMail) -> str:
        await asyncio.sleep(0.05)
        return "ok"

    queue, provider = FakeQueue(), FakeProvider(slow)
    for i in range(25):
        queue.put(envelope(f"s{i}"))
    run = running(worker(provider, queue, FakeDeadLetters(), concurrency=4))
    await wait_until(lambda: queue.depth == 0)
    await run.stop()
    assert len(provider.sent) == 25
    assert provider.most_in_flight == 4


async def test_stopping_finishes_sends_in_flight_and_closes_the_provider(running: Start) -> None:
    async def slow(mail: QueuedMail) -> str:
        await asyncio.sleep(0.5)
        return "ok"

    queue, provider = FakeQueue(), FakeProvider(slow)
    for i in range(3):
        queue.put(envelope(f"s{i}"))
    consumer = worker(provider, queue, FakeDeadLetters())
    run = running(consumer)
    await wait_until(lambda: provider.in_flight == 3)
    await run.stop()
    assert len(provider.sent) == 3 and queue.depth == 0
    await consumer.handler.aclose()
    assert provider.closed


def quick_probes(consumer: Worker) -> None:
    for circuit in (consumer.mail.provider_circuit, consumer.mail.store_circuit):
        circuit.first_probe, circuit.max_probe = 0.05, 0.1


async def test_an_account_level_refusal_pauses_and_sends_once_the_probe_passes(
    running: Start,
) -> None:
    revoked = True

    async def account(mail: QueuedMail) -> str:
        if revoked:
            raise ProviderUnavailable("fake answered 401: the API key was refused")
        return "ok"

    provider = FakeProvider(account)
    provider.probe_error = ProviderUnavailable("fake answered 401")
    queue, dead, tracker = FakeQueue(), FakeDeadLetters(), FakeTracker()
    for i in range(3):
        queue.put(envelope(f"p{i}"))
    consumer = worker(provider, queue, dead, tracker, max_attempts=1)
    quick_probes(consumer)
    run = running(consumer)
    await wait_until(lambda: consumer.paused)
    await wait_until(lambda: provider.probes >= 2)
    assert not consumer.ready and dead.sent == [] and queue.depth == 3
    # MAX_ATTEMPTS=1: had the pause been counted as an attempt, these were dead letters.
    revoked, provider.probe_error = False, None
    await wait_until(lambda: queue.depth == 0)
    await run.stop()
    assert len(provider.sent) == 3 and dead.sent == []
    assert ("retrying", "fake answered 401: the API key was refused") in tracker.records


async def test_a_status_store_outage_pauses_sending_and_dead_letters_nothing(
    running: Start,
) -> None:
    queue, dead, provider, tracker = FakeQueue(), FakeDeadLetters(), FakeProvider(), FakeTracker()
    tracker.unavailable = "DynamoDB UpdateItem failed: ServiceUnavailable"
    for i in range(3):
        queue.put(envelope(f"s{i}"))
    consumer = worker(provider, queue, dead, tracker, max_attempts=1)
    quick_probes(consumer)
    run = running(consumer)
    await wait_until(lambda: consumer.paused)
    await asyncio.sleep(0.3)
    assert provider.sent == [] and dead.sent == [] and queue.visibility_changes() == []
    assert [c.name for c in consumer.paused] == ["store_unavailable"]
    tracker.unavailable = None
    await wait_until(lambda: queue.depth == 0)
    await run.stop()
    assert len(provider.sent) == 3 and dead.sent == []


def received(body: str) -> ReceivedMessage:
    return ReceivedMessage(
        message_id="mid",
        receipt_handle="h",
        body=body,
        attributes={"ApproximateReceiveCount": "1", "MessageGroupId": "g"},
        message_attributes={},
    )


async def test_routing_counts_the_providers_calls_failing_for_the_moment() -> None:
    answers: list[Exception | None] = [
        None,
        TransientProviderError("fake answered 503"),
        PermanentProviderError("fake answered 400"),  # the message's fault, not the provider's
        TransientProviderError("fake answered 429", throttled=True),  # limbo's own rate
    ]

    async def scripted(mail: QueuedMail) -> str:
        answer = answers.pop(0)
        if answer is not None:
            raise answer
        return "id"

    calls = CallWindow(20.0)
    handler = MailHandler(
        worker_settings(), FakeProvider(scripted), tracker=FakeTracker(), calls=calls
    )
    for _ in range(4):
        await handler.handle(received(envelope()))
    assert calls.counts() == (3, 1)


async def test_a_paused_provider_with_a_fallback_hands_its_message_back() -> None:
    async def paused(mail: QueuedMail) -> str:
        raise ProviderUnavailable("fake: sending paused")

    for fallback in (True, False):
        handler = MailHandler(
            worker_settings(), FakeProvider(paused), tracker=FakeTracker(), fallback=fallback
        )
        outcome = await handler.handle(received(envelope()))
        assert isinstance(outcome, Unavailable) and outcome.hand_back is fallback
        assert outcome.circuit is handler.provider_circuit
