"""A send rate that holds for the whole deployment: tokens from a :class:`SharedBucket`.

Each send takes one token. A process takes its tokens from the shared bucket several at
a time (a lease of up to ``BURST_SECONDS`` of the rate), so the store sees a few calls a
second per replica however fast mail goes; one task at a time talks to the store and the
others wait their turn, in order. A lease not spent within ``LEASE_SECONDS`` is dropped:
with the bucket's size that bounds what any 10 s window can see to the rate plus 3 %
(for rates of 5/s and more; below, the one token of burst is a larger share).

The rate comes from the provider (SES: ``GetAccount``'s ``MaxSendRate`` with headroom)
at start and every ``SEND_RATE_REFRESH`` seconds, or from configuration (Mailgun). A
throttling answer from the provider halves it for every replica for a minute.
"""

from __future__ import annotations

import asyncio
import time
from collections.abc import Awaitable, Callable

from prometheus_client import Counter, Gauge, Histogram

from ..logs import get_logger
from ..store.bucket import SharedBucket

__all__ = ["RateLimited", "RateLimiter", "RateSource"]

log = get_logger("limbo.worker")

# The bucket holds BURST_SECONDS of the rate; a replica asks for all of it at once and
# drops what it has not spent after LEASE_SECONDS. A 10 s window can then see at most
# 10 + BURST_SECONDS + LEASE_SECONDS seconds' worth (+3 %, leaving room for the spread of
# send times); the burst must outlast one store call, or tokens overflow while a replica
# is asking and the rate is not reached. 0.3 + 0.15 measured 53 in 10 s at 5/s: too close.
LEASE_SECONDS = 0.1
BURST_SECONDS = 0.2
THROTTLE_FACTOR = 0.5
THROTTLE_SECONDS = 60.0

_WAIT = Histogram(
    "limbo_worker_rate_limit_wait_seconds",
    "Time a send waited for a token of the shared send rate",
    ["provider"],
    buckets=(0.001, 0.01, 0.05, 0.1, 0.25, 0.5, 1, 2.5, 5, 10, 30),
)
_RATE = Gauge(
    "limbo_worker_send_rate_limit",
    "Sends per second the whole deployment may make through this provider",
    ["provider"],
)
_LIMITED = Counter(
    "limbo_worker_rate_limited_total",
    "Sends put back on the queue because no token came within RATE_LIMIT_MAX_WAIT",
    ["provider"],
)
_THROTTLED = Counter(
    "limbo_worker_provider_throttled_total",
    "Throttling answers from the provider (each halves the shared rate for a while)",
    ["provider"],
)

RateSource = Callable[[], Awaitable[float | None]]


class RateLimited(Exception):
    """No token within the bound; ``wait`` is when one is expected."""

    def __init__(self, wait: float) -> None:
        super().__init__(f"send rate limit: no token within the wait bound (next in {wait:.1f}s)")
        self.wait = wait


class RateLimiter:
    def __init__(
        self,
        provider: str,
        bucket: SharedBucket,
        source: RateSource,
        *,
        max_wait: float,
        refresh: float = 300.0,
        fallback: float = 1.0,
    ) -> None:
        self.provider = provider
        self.bucket = bucket
        self.max_wait = max_wait
        self._source = source
        self._refresh = refresh
        self._fallback = fallback
        self._lock = asyncio.Lock()
        self._tokens = 0
        self._expires = 0.0
        self._refresher: asyncio.Task[None] | None = None
        self._rate: float | None = None
        self._burst = 1.0
        self._lease = 1

    @property
    def rate(self) -> float | None:
        """Sends per second for the deployment; None before the first send, or unlimited."""
        return self._rate

    def set_rate(self, rate: float | None) -> None:
        self._rate = rate
        if rate is not None:
            self._burst = max(1.0, rate * BURST_SECONDS)
            self._lease = max(1, int(self._burst))
        _RATE.labels(self.provider).set(rate if rate is not None else float("inf"))

    async def _start(self) -> None:
        """The first reading of the rate, then a task keeping it current."""
        try:
            rate = await self._source()
        except Exception as error:
            # The provider's own floor until the next reading (SES's sandbox rate is 1/s).
            log.warning(
                "send rate unknown; using the fallback until the next reading",
                error=type(error).__name__,
                fallback=self._fallback,
            )
            rate = self._fallback
        if rate is None:
            log.info("no send-rate limit for this provider")
        else:
            log.info("shared send-rate limit", rate=rate)
        self.set_rate(rate)
        self._refresher = asyncio.create_task(self._keep_current(), name="send-rate")

    async def acquire(self) -> None:
        """One token, waiting at most ``max_wait``; else :class:`RateLimited`. A store
        failure comes out as :class:`~limbo_shared.store.StoreUnavailable`."""
        if self._refresher is None:
            async with self._lock:
                if self._refresher is None:
                    await self._start()
        if self._rate is None:
            return
        loop = asyncio.get_running_loop()
        started = loop.time()
        deadline = started + self.max_wait
        try:
            await asyncio.wait_for(self._lock.acquire(), timeout=self.max_wait)
        except TimeoutError:
            _LIMITED.labels(self.provider).inc()
            raise RateLimited(0.0) from None
        try:
            while not (self._tokens and time.monotonic() < self._expires):
                grant = await self.bucket.take(self._lease, rate=self._rate, burst=self._burst)
                if grant.tokens:
                    self._tokens = grant.tokens
                    self._expires = time.monotonic() + LEASE_SECONDS
                    break
                if loop.time() + grant.wait > deadline:
                    _LIMITED.labels(self.provider).inc()
                    raise RateLimited(grant.wait)
                await asyncio.sleep(grant.wait)
            self._tokens -= 1
        finally:
            self._lock.release()
        _WAIT.labels(self.provider).observe(loop.time() - started)

    async def throttled(self) -> None:
        """The provider said too fast: lower the shared rate for a while."""
        if self._rate is None:
            return
        _THROTTLED.labels(self.provider).inc()
        self._tokens = 0
        log.warning(
            "provider throttled; lowering the shared send rate",
            factor=THROTTLE_FACTOR,
            seconds=THROTTLE_SECONDS,
        )
        await self.bucket.cut(THROTTLE_FACTOR, THROTTLE_SECONDS)

    async def _keep_current(self) -> None:
        while True:
            await asyncio.sleep(self._refresh)
            try:
                rate = await self._source()
            except Exception as error:  # keep the last known rate
                log.warning("send rate not refreshed", error=type(error).__name__)
                continue
            if rate != self._rate:
                log.info("send rate changed", old=self._rate, new=rate)
                self.set_rate(rate)

    async def aclose(self) -> None:
        if self._refresher is not None:
            self._refresher.cancel()
            await asyncio.gather(self._refresher, return_exceptions=True)
