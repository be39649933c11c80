"""Delivery events: providers' notifications parsed into limbo's :class:`DeliveryEvent`."""

from .mailgun import MailgunEventSource, MailgunSignature, sign_mailgun, verify_mailgun
from .model import (
    EVENT_SOURCE_ATTRIBUTE,
    MAX_DIAGNOSTIC,
    BounceType,
    DeliveryEvent,
    DeliveryOutcome,
    EventRejected,
    EventSource,
)
from .ses import SesEventSource, parse_ses_record
from .sns import SnsEnvelope, SnsVerifier

__all__ = [
    "EVENT_SOURCE_ATTRIBUTE",
    "MAX_DIAGNOSTIC",
    "BounceType",
    "DeliveryEvent",
    "DeliveryOutcome",
    "EventRejected",
    "EventSource",
    "MailgunEventSource",
    "MailgunSignature",
    "SesEventSource",
    "SnsEnvelope",
    "SnsVerifier",
    "parse_ses_record",
    "sign_mailgun",
    "verify_mailgun",
]
