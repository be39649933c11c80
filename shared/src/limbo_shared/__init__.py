"""limbo's shared library: what the API and every worker have in common."""

from .batching import Batcher
from .config import ConfigError, LoggingSettings, QueueSettings, load_settings
from .propagation import extract_context, inject_context
from .provider import PermanentProviderError, Provider, TransientProviderError
from .queue import EntryFailed, OutgoingMessage, QueueUnavailable, ReceivedMessage, SqsQueue
from .schema import MAX_RECIPIENTS, MailRequest, QueuedMail

__all__ = [
    "MAX_RECIPIENTS",
    "Batcher",
    "ConfigError",
    "EntryFailed",
    "LoggingSettings",
    "MailRequest",
    "OutgoingMessage",
    "PermanentProviderError",
    "Provider",
    "QueueSettings",
    "QueueUnavailable",
    "QueuedMail",
    "ReceivedMessage",
    "SqsQueue",
    "TransientProviderError",
    "extract_context",
    "inject_context",
    "load_settings",
]
