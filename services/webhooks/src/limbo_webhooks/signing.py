"""Standard Webhooks headers for one attempt, signed by the reference library."""

from __future__ import annotations

from datetime import UTC, datetime

from standardwebhooks.webhooks import Webhook

from limbo_shared.webhooks import DeliveryJob, Endpoint

__all__ = ["signed_headers"]


def signed_headers(endpoint: Endpoint, job: DeliveryJob, now: float) -> dict[str, str]:
    """``webhook-id`` is the same on every attempt (the receiver's idempotency key);
    ``webhook-timestamp`` is the attempt's, so a retry a day later is not stale. During
    a rotation's grace period the old secret signs too (space-separated signatures)."""
    timestamp = datetime.fromtimestamp(int(now), UTC)
    signatures = " ".join(
        Webhook(secret).sign(job.webhook_id, timestamp, job.body)
        for secret in endpoint.signing_secrets(now)
    )
    return {
        "webhook-id": job.webhook_id,
        "webhook-timestamp": str(int(now)),
        "webhook-signature": signatures,
        "content-type": "application/json",
    }
