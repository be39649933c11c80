"""The mail workers tell webhooks `sent`, `failed` and `rejected`, and nothing else."""

from __future__ import annotations

from typing import Any, cast

from limbo_shared.store import Claim, ClaimOutcome, MessageRecord, MessageStore, Status
from limbo_shared.webhooks import StatusNotifier
from limbo_shared.worker.tracking import StoreTracking, TrackerClaim


class FakeStore:
    async def mark_sent(self, claim: Claim, *, provider: str, provider_message_id: str) -> None:
        return None

    async def mark_unsent(self, claim: Claim, status: Status, error: str) -> None:
        return None


class FakeNotifier:
    def __init__(self) -> None:
        self.calls: list[tuple[str, str, str, dict[str, Any]]] = []

    async def notify(self, owner: str, message_id: str, status: str, **fields: Any) -> int:
        self.calls.append((owner, message_id, status, fields))
        return 1


def _claim() -> TrackerClaim:
    record = MessageRecord(
        id="m-1",
        owner="alice",
        status=Status.SENDING,
        recipients=1,
        created_at=0.0,
        updated_at=0.0,
        expires_at=0,
    )
    return TrackerClaim(Claim(ClaimOutcome.CLAIMED, "m-1", token="t", record=record))


def _tracking(notifier: FakeNotifier) -> StoreTracking:
    return StoreTracking(
        cast(MessageStore, FakeStore()),
        provider="ses",
        send_timeout=5,
        notifier=cast(StatusNotifier, notifier),
    )


async def test_sent_failed_and_rejected_are_told_with_the_owner() -> None:
    notifier = FakeNotifier()
    tracking = _tracking(notifier)
    await tracking.sent(_claim(), "provider-id")
    await tracking.unsent(_claim(), Status.FAILED, "mailbox unavailable")
    await tracking.unsent(_claim(), Status.REJECTED, "bad address")
    assert notifier.calls == [
        ("alice", "m-1", "sent", {"provider": "ses", "detail": None}),
        ("alice", "m-1", "failed", {"provider": "ses", "detail": "mailbox unavailable"}),
        ("alice", "m-1", "rejected", {"provider": "ses", "detail": "bad address"}),
    ]


async def test_a_retry_is_not_a_status_change_webhooks_hear_of() -> None:
    notifier = FakeNotifier()
    await _tracking(notifier).unsent(_claim(), Status.RETRYING, "throttled")
    assert notifier.calls == []
