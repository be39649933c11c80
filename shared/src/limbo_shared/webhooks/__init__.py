"""Outgoing webhooks: event types and payload, the endpoint registry, destination rules,
and the notifier every status-changing process calls."""

from __future__ import annotations

from .destinations import Destinations, DestinationSettings, Refused, is_public
from .events import DeliveryJob, EventType, event_payload
from .notify import NotifierSettings, StatusNotifier, WebhookQueue, open_notifier
from .registry import (
    MAX_ATTEMPTS_KEPT,
    MAX_ENDPOINTS,
    Attempt,
    AttemptLog,
    Endpoint,
    EndpointRegistry,
    TooManyEndpoints,
)

__all__ = [
    "MAX_ATTEMPTS_KEPT",
    "MAX_ENDPOINTS",
    "Attempt",
    "AttemptLog",
    "DeliveryJob",
    "DestinationSettings",
    "Destinations",
    "Endpoint",
    "EndpointRegistry",
    "EventType",
    "NotifierSettings",
    "Refused",
    "StatusNotifier",
    "TooManyEndpoints",
    "WebhookQueue",
    "event_payload",
    "is_public",
    "open_notifier",
]
