"""The one interface every sending provider implements.

A provider turns a validated :class:`QueuedMail` into one call to its service and
classifies failures in three: about this message (:class:`PermanentProviderError`,
dead-lettered), about this moment (:class:`TransientProviderError`, retried with
backoff), or about the account (:class:`ProviderUnavailable`: bad or revoked key,
sending paused, missing configuration; every message would fail alike, so the worker
pauses and :meth:`Provider.probe` until the provider answers again, and no message is
charged an attempt). The worker runtime owns everything else (queue, retries,
dead-lettering, pausing, tracing, metrics). Adding a provider is one new package with a class
like this and a ``main`` that calls :func:`limbo_shared.worker.run_worker`.
"""

from __future__ import annotations

from typing import Protocol, runtime_checkable

from .schema import QueuedMail

__all__ = [
    "NO_ANSWER",
    "PermanentProviderError",
    "Provider",
    "ProviderUnavailable",
    "RatedProvider",
    "SendLookup",
    "TransientProviderError",
    "unanswered",
]

# How the reason of a send that got no answer begins: the provider may have accepted it
# all the same. The status record keeps the reason (last_error), so the next attempt, on
# any replica, knows to look the message up first (SendLookup).
NO_ANSWER = "no answer"


def unanswered(reason: str | None) -> bool:
    """Whether ``reason`` says a send got no answer (so it may have been accepted)."""
    return reason is not None and reason.startswith(NO_ANSWER)


class TransientProviderError(Exception):
    """Worth retrying later: throttling, 429, 5xx, timeouts, connection errors.

    ``throttled`` says the provider refused because of the send rate: the shared rate
    limit is lowered for a while.
    """

    def __init__(
        self, reason: str, retry_after: float | None = None, *, throttled: bool = False
    ) -> None:
        super().__init__(reason)
        self.reason = reason
        self.retry_after = retry_after
        self.throttled = throttled


class PermanentProviderError(Exception):
    """The provider refused this message for good (say, a recipient it will not take)."""

    def __init__(self, reason: str) -> None:
        super().__init__(reason)
        self.reason = reason


class ProviderUnavailable(Exception):
    """Nothing can be sent through this account now: not the message's fault.

    Bad, revoked or expired credentials, access denied, sending paused or suspended,
    a sender domain or configuration set that is not set up. ``reason`` is limbo's own
    words plus the provider's error code, never text that could carry a secret.
    """

    def __init__(self, reason: str) -> None:
        super().__init__(reason)
        self.reason = reason


class Provider(Protocol):
    #: Low-cardinality label for metrics, logs and spans: "ses", "mailgun".
    name: str
    #: Host the provider calls, for the CLIENT span's server.address.
    server_address: str

    async def send(self, mail: QueuedMail) -> str:
        """Send one email; answer the provider's message id or raise one of the errors above."""
        ...

    async def probe(self) -> None:
        """One cheap authenticated call; raise ProviderUnavailable (or Transient...) while
        the account still cannot send. Called while the worker is paused."""
        ...

    async def aclose(self) -> None:
        """Release connections; called once at shutdown."""
        ...


@runtime_checkable
class RatedProvider(Protocol):
    """A provider that knows how fast the whole deployment may send through it."""

    async def max_send_rate(self) -> float | None:
        """Sends per second, headroom already left; None for no limit."""
        ...


@runtime_checkable
class SendLookup(Protocol):
    """A provider that can say whether it accepted a message after limbo stopped waiting."""

    async def find_accepted(self, mail: QueuedMail) -> str | None:
        """The provider's message id of an accepted earlier send of ``mail``, or None when
        it knows of none. Bounded by a short timeout of its own; raises
        TransientProviderError when the lookup fails (the worker then sends again)."""
        ...
