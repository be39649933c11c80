"""The worker's use of the status store: claim before sending, record what happened.

With tracking off (no ``STATUS_TABLE``) every claim succeeds and nothing is recorded,
so the runtime has one code path either way. Recording never raises: a store that
fails after the provider accepted must not make the worker retry a sent message.
"""

from __future__ import annotations

import asyncio
from dataclasses import dataclass
from typing import Protocol

from ..logs import get_logger
from ..schema import QueuedMail
from ..store import Claim, ClaimOutcome, MessageStore, Status, StoreUnavailable
from ..webhooks import StatusNotifier

__all__ = ["LEASE_MARGIN_SECONDS", "NoTracking", "StoreTracking", "Tracker", "TrackerClaim"]

log = get_logger("limbo.worker.tracking")

# The lease covers the provider call (bounded by SEND_TIMEOUT) and the write of `sent`.
LEASE_MARGIN_SECONDS = 10.0
# `sent` is what stops a duplicate: try it a few times before giving up on it.
_SENT_ATTEMPTS = 3


@dataclass(frozen=True)
class TrackerClaim:
    """A claim, or why there is none (``unavailable`` says the store did not answer)."""

    claim: Claim | None
    unavailable: str | None = None

    @property
    def proceed(self) -> bool:
        return self.claim is not None and self.claim.outcome is ClaimOutcome.CLAIMED


class Tracker(Protocol):
    async def claim(self, mail: QueuedMail) -> TrackerClaim: ...

    async def sent(self, claim: TrackerClaim, provider_message_id: str) -> None: ...

    async def unsent(self, claim: TrackerClaim, status: Status, error: str) -> None: ...

    async def probe(self) -> None:
        """Raise while the store does not answer (asked while the worker is paused on it)."""
        ...

    async def aclose(self) -> None: ...


class NoTracking:
    """Tracking off: every message is claimed, nothing is written (at-least-once)."""

    async def claim(self, mail: QueuedMail) -> TrackerClaim:
        return TrackerClaim(Claim(ClaimOutcome.CLAIMED, mail.id))

    async def sent(self, claim: TrackerClaim, provider_message_id: str) -> None:
        return None

    async def unsent(self, claim: TrackerClaim, status: Status, error: str) -> None:
        return None

    async def probe(self) -> None:
        return None

    async def aclose(self) -> None:
        return None


class StoreTracking:
    def __init__(
        self,
        store: MessageStore,
        *,
        provider: str,
        send_timeout: float,
        notifier: StatusNotifier | None = None,
    ) -> None:
        self.store = store
        self.provider = provider
        self.lease_seconds = send_timeout + LEASE_MARGIN_SECONDS
        # Webhooks for `sent`, `failed` and `rejected` (WEBHOOK_QUEUE set).
        self.notifier = notifier

    async def _notify(self, claim: Claim, status: Status, detail: str | None = None) -> None:
        if self.notifier is None or claim.record is None:
            return
        await self.notifier.notify(
            claim.record.owner,
            claim.message_id,
            status.value,
            provider=self.provider,
            detail=detail,
        )

    async def claim(self, mail: QueuedMail) -> TrackerClaim:
        try:
            claim = await self.store.claim(
                mail, provider=self.provider, lease_seconds=self.lease_seconds
            )
        except StoreUnavailable as error:
            return TrackerClaim(None, unavailable=str(error))
        return TrackerClaim(claim)

    async def sent(self, claim: TrackerClaim, provider_message_id: str) -> None:
        assert claim.claim is not None
        for attempt in range(_SENT_ATTEMPTS):
            try:
                await self.store.mark_sent(
                    claim.claim, provider=self.provider, provider_message_id=provider_message_id
                )
                await self._notify(claim.claim, Status.SENT)
                return
            except StoreUnavailable as error:
                if attempt == _SENT_ATTEMPTS - 1:
                    # The message is deleted next, so no duplicate follows; only the record
                    # stays `sending` until someone looks.
                    log.error("could not record sent", error=str(error))
                    return
                await asyncio.sleep(0.2 * 2**attempt)

    async def unsent(self, claim: TrackerClaim, status: Status, error: str) -> None:
        assert claim.claim is not None
        try:
            await self.store.mark_unsent(claim.claim, status, error)
        except StoreUnavailable as failure:
            # The lease runs out on its own; the next attempt waits for it at worst.
            log.warning("could not record status", status=status.value, error=str(failure))
        if status in (Status.FAILED, Status.REJECTED):
            await self._notify(claim.claim, status, error)

    async def probe(self) -> None:
        # One consistent read of a key no message has: answers (None) when the table does.
        await self.store.get("limbo-store-probe")

    async def aclose(self) -> None:
        await self.store.aclose()
        self.store.table.close()
