"""Delivery events: providers' notifications parsed into limbo's :class:`DeliveryEvent`."""

from . import model
from .mailgun import MailgunEventSource, MailgunSignature, sign_mailgun, verify_mailgun
from .model import *  # noqa: F403 - the event model is this package's vocabulary
from .ses import SesEventSource, parse_ses_record
from .sns import SnsEnvelope, SnsVerifier

__all__ = [
    *model.__all__,
    "MailgunEventSource",
    "MailgunSignature",
    "SesEventSource",
    "SnsEnvelope",
    "SnsVerifier",
    "parse_ses_record",
    "sign_mailgun",
    "verify_mailgun",
]
