"""The sending workers' handler: one queued email, claimed, sent, classified.

Parses the :class:`QueuedMail`, claims it in the status store (when tracking is on),
calls the provider bounded by ``SEND_TIMEOUT`` and turns what happened into an
:data:`~.consumer.Outcome` for the consumer to settle.
"""

from __future__ import annotations

import asyncio
import contextlib
import time

from opentelemetry import trace
from opentelemetry.trace import Status, StatusCode
from pydantic import ValidationError

from ..errors import describe_validation_error
from ..logs import bind_for_task, get_logger
from ..payload import PayloadMissing, PayloadStore, PayloadUnavailable
from ..provider import (
    NO_ANSWER,
    PermanentProviderError,
    Provider,
    ProviderUnavailable,
    TransientProviderError,
)
from ..queue import ReceivedMessage
from ..schema import QueuedMail
from ..store import ClaimOutcome, StoreUnavailable
from ..store import Status as MessageStatus
from .backoff import retry_delay
from .circuit import Circuit
from .consumer import DeadLetter, Defer, Done, Outcome, Retry, Unavailable
from .health import CallWindow
from .metrics import WorkerMetrics
from .moved import attempt_of
from .ratelimit import RateLimited, RateLimiter
from .resend import ResendCheck
from .settings import WorkerSettings
from .spans import provider_span
from .tracking import NoTracking, Tracker

__all__ = ["MailHandler"]

log = get_logger("limbo.worker")


class MailHandler:
    def __init__(
        self,
        settings: WorkerSettings,
        provider: Provider,
        *,
        tracker: Tracker | None = None,
        metrics: WorkerMetrics | None = None,
        max_attempts: int | None = None,
        payloads: PayloadStore | None = None,
        limiter: RateLimiter | None = None,
        calls: CallWindow | None = None,
        fallback: bool = False,
    ) -> None:
        self.name = provider.name
        self.limiter = limiter
        # The provider calls of the last moments, for the routing health report.
        self.calls = calls
        # ROUTING names a provider after this one: mail this provider cannot send now is
        # released for it, not held until this one recovers.
        self.fallback = fallback
        # Resolves offloaded bodies (S3 pointers); without a client only inline ones work.
        self.payloads = payloads or PayloadStore(None, None)
        self.settings = settings
        self.provider = provider
        self.tracker: Tracker = tracker or NoTracking()
        self.metrics = metrics or WorkerMetrics(provider.name)
        self.max_attempts = max_attempts or settings.max_attempts
        # The dependencies whose failure is nobody's message's fault: while one is open
        # the consumer receives nothing and holds what it has.
        self.provider_circuit = Circuit("provider_unavailable", provider.probe)
        self.store_circuit = Circuit("store_unavailable", self.tracker.probe)
        self.resend = ResendCheck(provider, self.metrics)

    async def handle(self, message: ReceivedMessage) -> Outcome:
        span = trace.get_current_span()
        try:
            body = await self.payloads.resolve(message.body, message.message_attributes)
        except PayloadMissing as error:
            return DeadLetter(str(error), "dead_lettered")
        except PayloadUnavailable as error:
            return Retry(str(error), self._delay(message, None))
        try:
            mail = QueuedMail.from_json(body)
        except ValidationError as error:
            reason = f"unparseable message: {describe_validation_error(error, limit=1)}"
            return DeadLetter(reason, "dead_lettered")
        span.set_attribute("limbo.message.id", mail.id)
        # For the rest of this message's task: the consumer's lines (retry, dead letter)
        # name limbo's id too.
        bind_for_task(message_id=mail.id)
        if message.sent_timestamp is not None:
            self.metrics.time_in_queue.observe(max(0.0, time.time() - message.sent_timestamp))
        outcome = await self._send(message, mail, span)
        if isinstance(outcome, Done | DeadLetter):
            # The final outcome: the offloaded payload is no longer needed. Deleted just
            # before the queue message; should that delete fail, the redelivery finds no
            # payload and is dead-lettered (it was sent or refused already), never resent.
            await self._discard_payload(message)
        return outcome

    async def _discard_payload(self, message: ReceivedMessage) -> None:
        try:
            await self.payloads.discard(message.body, message.message_attributes)
        except PayloadUnavailable as error:
            log.warning(
                "offloaded payload not deleted; the bucket's lifecycle rule expires it",
                error=str(error),
            )

    async def _send(self, message: ReceivedMessage, mail: QueuedMail, span: trace.Span) -> Outcome:
        if self.limiter is not None:
            # Before the claim: a wait for a token must not eat into the claim's lease.
            try:
                await self.limiter.acquire()
            except RateLimited as limited:
                span.add_event("rate_limited")
                return Defer(max(1.0, limited.wait))
            except StoreUnavailable as error:
                return Unavailable(self.store_circuit, f"send rate limit: {error}")
        claim = await self.tracker.claim(mail)
        if claim.unavailable is not None:
            # Not a failed attempt: a retry here would burn receive counts and, after a few
            # minutes of store trouble, dead-letter accepted mail.
            return Unavailable(self.store_circuit, f"status store: {claim.unavailable}")
        assert claim.claim is not None
        if claim.claim.outcome is ClaimOutcome.ALREADY_SENT:
            span.add_event("duplicate_suppressed")
            log.warning("already sent; deleted without sending", attempt=attempt_of(message))
            return Done("duplicate")
        if claim.claim.outcome is ClaimOutcome.BUSY:
            # Another worker holds the lease: look again once it has run out.
            log.info("being sent elsewhere", busy_for=round(claim.claim.busy_for, 1))
            return Defer(claim.claim.busy_for + 1)
        timeout = self.settings.send_timeout
        if self.resend.wanted(mail, claim.claim.record):
            # The lookup and the send share SEND_TIMEOUT, which the lease and the drain are
            # sized for: the lookup gets at most half of it.
            started = time.monotonic()
            found = await self.resend.find(mail, timeout / 2)
            if found is not None:
                span.add_event("found_sent")
                self.resend.settled(mail)
                await self.tracker.sent(claim, found)
                log.info(
                    "accepted by an earlier attempt; not sent again",
                    provider_message_id=found,
                    attempt=attempt_of(message),
                )
                return Done("found_sent")
            timeout -= time.monotonic() - started
        try:
            provider_id = await self._call_provider(mail, timeout)
        except ProviderUnavailable as error:
            # Drop the lease, so the same message can be claimed again once resumed.
            await self.tracker.unsent(claim, MessageStatus.RETRYING, error.reason)
            return Unavailable(
                self.provider_circuit,
                f"{self.provider.name}: {error.reason}",
                hand_back=self.fallback,
            )
        except PermanentProviderError as error:
            self.resend.settled(mail)
            if self.calls is not None:  # the provider answered; the message was at fault
                self.calls.record(failed=False)
            await self.tracker.unsent(claim, MessageStatus.REJECTED, error.reason)
            return DeadLetter(f"rejected by {self.provider.name}: {error.reason}", "rejected")
        except TransientProviderError as error:
            if self.calls is not None and not error.throttled:
                self.calls.record(failed=True)
            if error.throttled and self.limiter is not None:
                with contextlib.suppress(StoreUnavailable):
                    await self.limiter.throttled()
            self.resend.failed(mail, error.reason)
            # Recorded before the message is released, so its next receipt can claim it.
            gives_up = attempt_of(message) >= self.max_attempts
            status = MessageStatus.FAILED if gives_up else MessageStatus.RETRYING
            await self.tracker.unsent(claim, status, error.reason)
            return Retry(error.reason, self._delay(message, error.retry_after))
        self.resend.settled(mail)
        if self.calls is not None:
            self.calls.record(failed=False)
        span.set_attribute("limbo.provider.message_id", provider_id)
        # `sent` before the delete: a crash between the two cannot cause a second send.
        await self.tracker.sent(claim, provider_id)
        log.info("sent", provider_message_id=provider_id, attempt=attempt_of(message))
        return Done("sent")

    def _delay(self, message: ReceivedMessage, retry_after: float | None) -> float:
        return retry_delay(
            attempt_of(message),
            base=self.settings.retry_base_seconds,
            cap=self.settings.retry_max_seconds,
            retry_after=retry_after,
        )

    async def _call_provider(self, mail: QueuedMail, timeout: float) -> str:
        with provider_span(self.provider, "send") as span:
            started = time.perf_counter()
            try:
                return await asyncio.wait_for(self.provider.send(mail), timeout=timeout)
            except TimeoutError:
                span.set_status(Status(StatusCode.ERROR, "timeout"))
                raise TransientProviderError(
                    f"{NO_ANSWER} within SEND_TIMEOUT={self.settings.send_timeout:g}s"
                ) from None
            except (PermanentProviderError, TransientProviderError, ProviderUnavailable) as error:
                span.set_status(Status(StatusCode.ERROR, error.reason))
                span.set_attribute("error.type", type(error).__name__)
                raise
            except Exception as error:
                # Only the class: an exception's text can carry the request's headers.
                log.error(
                    "provider raised unexpectedly; retrying later", error=type(error).__name__
                )
                span.set_status(Status(StatusCode.ERROR, type(error).__name__))
                raise TransientProviderError(f"unexpected error: {type(error).__name__}") from error
            finally:
                self.metrics.provider_latency.observe(time.perf_counter() - started)

    async def aclose(self) -> None:
        if self.limiter is not None:
            await self.limiter.aclose()
        await self.provider.aclose()
        await self.tracker.aclose()
