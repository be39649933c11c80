"""The message limbo puts on the dead-letter queue: the original, with its reason."""

from __future__ import annotations

import re
from dataclasses import replace

from ..queue import MAX_MESSAGE_ATTRIBUTES, SQS_MESSAGE_LIMIT, OutgoingMessage, ReceivedMessage

__all__ = ["MAX_REASON", "dead_letter_message", "sqs_text"]

# The dead-letter reason travels as a message attribute; keep it readable, not huge.
MAX_REASON = 500
# What SQS accepts in a message body or a string attribute (its documented character
# set): #x9 | #xA | #xD | #x20-#xD7FF | #xE000-#xFFFD | #x10000-#x10FFFF.
_NOT_SQS_TEXT = re.compile("[^\t\n\r\x20-\ud7ff\ue000-\ufffd\U00010000-\U0010ffff]")


def sqs_text(text: str, limit: int = MAX_REASON) -> str:
    """``text`` as SQS takes it in an attribute: characters it refuses (control
    characters, lone surrogates, U+FFFE/U+FFFF) become U+FFFD, and at most ``limit``
    characters are kept. A reason SQS refused would leave the message looping."""
    cleaned = _NOT_SQS_TEXT.sub("\ufffd", text[:limit])
    return cleaned or "(no reason given)"


def dead_letter_message(message: ReceivedMessage, reason: str) -> OutgoingMessage:
    """The message for the dead-letter queue, within SQS's limits whatever arrived.

    SQS takes at most 10 attributes and 1 MiB of body and attributes together. A poison
    message can already be at either limit, and the reason must still fit beside it,
    or the dead-lettering itself fails and the message comes back for ever: so only
    the first carried attributes are kept (the trace context first), and a body too
    large is cut, saying so.
    """
    own = {
        "limbo-reason": {"DataType": "String", "StringValue": sqs_text(reason)},
        "limbo-source-message-id": {"DataType": "String", "StringValue": message.message_id},
    }
    carried = sorted(
        message.message_attributes.items(),
        key=lambda item: item[0] not in ("traceparent", "tracestate"),
    )
    room = MAX_MESSAGE_ATTRIBUTES - len(own) - 1  # one spare for limbo-truncated
    attributes = {**dict(carried[:room]), **own}
    dead = OutgoingMessage(
        body=message.body or "(empty)",
        group_id=message.group_id or "dead-letter",
        deduplication_id=message.message_id,
        attributes=attributes,
    )
    excess = dead.size() - SQS_MESSAGE_LIMIT
    if excess <= 0:
        return dead
    original = len(dead.body.encode())
    note = {"DataType": "String", "StringValue": f"body cut from {original} bytes"}
    keep = max(0, original - excess - 100)
    body = dead.body.encode()[:keep].decode(errors="ignore")
    return replace(dead, body=body or "(empty)", attributes={**attributes, "limbo-truncated": note})
