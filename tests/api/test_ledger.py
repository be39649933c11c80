"""The ledger answers outcomes, not HTTP: what happened is its job, the status code is not."""

from __future__ import annotations

import uuid

from limbo_api.ledger import MAX_IDEMPOTENCY_KEY, Ledger, Refusal, Replay, Ticket, open_ledger
from limbo_api.settings import ApiSettings
from limbo_devtools.local_aws import LocalAws
from limbo_shared.schema import MailRequest

MAIL = MailRequest.model_validate(
    {"from": "a@example.com", "to": ["b@example.com"], "subject": "S", "message": "T"}
)


def untracked() -> Ledger:
    return Ledger(None, None, lease_seconds=10)


async def test_without_a_key_any_ledger_hands_out_a_ticket_for_the_given_id() -> None:
    assert await untracked().begin("o", None, MAIL, "m-1") == Ticket("m-1", "o")


async def test_a_key_of_the_wrong_length_is_refused_before_the_store_is_asked() -> None:
    ledger = untracked()
    assert await ledger.begin("o", "", MAIL, "m-1") is Refusal.BAD_KEY
    assert await ledger.begin("o", "k" * (MAX_IDEMPOTENCY_KEY + 1), MAIL, "m") is Refusal.BAD_KEY


async def test_with_tracking_off_keys_and_lookups_are_refused_as_such() -> None:
    ledger = untracked()
    assert await ledger.begin("o", "key-1", MAIL, "m-1") is Refusal.TRACKING_OFF
    assert await ledger.lookup("o", str(uuid.uuid4())) is Refusal.TRACKING_OFF


async def test_a_repeat_is_a_replay_and_another_owners_message_is_not_found(
    tracked_aws: LocalAws,
) -> None:
    settings = ApiSettings(
        queue=tracked_aws.queue_url,
        region=tracked_aws.region,
        aws_endpoint_url=tracked_aws.endpoint,
        status_table=tracked_aws.status_table,
    )
    ledger = open_ledger(settings)
    try:
        first = str(uuid.uuid4())
        ticket = await ledger.begin("o", "key-1", MAIL, first)
        assert isinstance(ticket, Ticket)
        assert await ledger.begin("o", "key-1", MAIL, str(uuid.uuid4())) is Refusal.IN_PROGRESS
        assert ledger.keys is not None
        await ledger.keys.complete("o", "key-1", first)
        assert await ledger.begin("o", "key-1", MAIL, str(uuid.uuid4())) == Replay(first)
        assert await ledger.lookup("other", first) is Refusal.NOT_FOUND
    finally:
        await ledger.aclose()
