"""The one interface every sending provider implements.

A provider turns a validated :class:`QueuedMail` into one call to its service and
classifies failures; the worker runtime owns everything else (queue, retries,
dead-lettering, tracing, metrics). Adding a provider is one new package with a class
like this and a ``main`` that calls :func:`limbo_shared.worker.run_worker`.
"""

from __future__ import annotations

from typing import Protocol

from .schema import QueuedMail

__all__ = ["PermanentProviderError", "Provider", "TransientProviderError"]


class TransientProviderError(Exception):
    """Worth retrying later: throttling, 429, 5xx, timeouts, connection errors."""

    def __init__(self, reason: str, retry_after: float | None = None) -> None:
        super().__init__(reason)
        self.reason = reason
        self.retry_after = retry_after


class PermanentProviderError(Exception):
    """The provider refused the message for good (bad sender, bad key, rejected)."""

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

    async def aclose(self) -> None:
        """Release connections; called once at shutdown."""
        ...
