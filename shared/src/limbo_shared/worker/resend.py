"""Before re-sending a message whose previous send got no answer, ask the provider.

A provider that accepts after ``SEND_TIMEOUT`` (or its own read timeout) has sent the
email; re-sending it makes a second one, and no provider takes an idempotency key.
Where the provider can look a message up (:class:`~limbo_shared.provider.SendLookup`:
Mailgun's events API, by the ``v:limbo_id`` variable), the retry asks first and, if the
provider accepted it, counts it as sent instead of sending again. The lookup costs one
request per such retry and nothing otherwise; a lookup that fails or takes too long falls
back to sending again (a possible duplicate, never a lost email).

Which retries follow an unanswered send: with tracking, the record's ``last_error`` says
so on any replica; without, only this process remembers its own unanswered sends.
"""

from __future__ import annotations

import asyncio
from collections import OrderedDict

from opentelemetry.trace import Status, StatusCode

from ..logs import get_logger
from ..provider import Provider, SendLookup, TransientProviderError, unanswered
from ..schema import QueuedMail
from ..store import MessageRecord
from .metrics import WorkerMetrics
from .spans import provider_span

__all__ = ["ResendCheck"]

log = get_logger("limbo.worker")

# Ids this process sent without an answer (tracking off): enough for every message in
# flight several times over, bounded so a long outage cannot grow it without end.
_REMEMBERED = 10_000


class ResendCheck:
    def __init__(self, provider: Provider, metrics: WorkerMetrics) -> None:
        self.lookup = provider if isinstance(provider, SendLookup) else None
        self.provider = provider
        self.metrics = metrics
        self._unanswered: OrderedDict[str, None] = OrderedDict()

    def failed(self, mail: QueuedMail, reason: str) -> None:
        """A send of ``mail`` failed transiently with ``reason``; it will be retried."""
        if self.lookup is None or not unanswered(reason):
            return
        self._unanswered[mail.id] = None
        self._unanswered.move_to_end(mail.id)
        while len(self._unanswered) > _REMEMBERED:
            self._unanswered.popitem(last=False)

    def settled(self, mail: QueuedMail) -> None:
        """``mail`` is sent, found or dead-lettered: nothing more to look up."""
        self._unanswered.pop(mail.id, None)

    def wanted(self, mail: QueuedMail, record: MessageRecord | None) -> bool:
        """Whether the previous send of ``mail`` got no answer and the provider can look."""
        if self.lookup is None:
            return False
        if record is not None and unanswered(record.last_error):
            return True
        return mail.id in self._unanswered

    async def find(self, mail: QueuedMail, timeout: float) -> str | None:
        """The provider's id of an accepted earlier send, or None: none found, or the
        lookup failed or took longer than ``timeout`` (then the message is sent again)."""
        assert self.lookup is not None
        with provider_span(self.provider, "lookup") as span:
            try:
                async with asyncio.timeout(timeout):
                    found = await self.lookup.find_accepted(mail)
            except (TransientProviderError, TimeoutError) as error:
                reason = getattr(error, "reason", f"no answer within {timeout:g}s")
                span.set_status(Status(StatusCode.ERROR, reason))
                self.metrics.resend_lookup("failed")
                log.warning("resend lookup failed; sending again", error=reason)
                return None
            self.metrics.resend_lookup("found" if found is not None else "not_found")
            span.set_attribute("limbo.lookup.found", found is not None)
            return found
