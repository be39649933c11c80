"""Leaving suppressed recipients out of a request, or of each email of a batch.

One lookup per request (a batch's addresses together): ``Suppressions.suppressed``
shares its BatchGetItem calls with concurrent requests.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass

from limbo_shared.schema import MailRequest
from limbo_shared.store import Suppressions

__all__ = ["Split", "all_suppressed_problem", "split", "without_suppressed"]


@dataclass(frozen=True)
class Split:
    """One email after the lookup: what is left to send (None when nobody in To is left:
    a message needs a To recipient) and the recipients left out, as the client gave them."""

    mail: MailRequest | None
    suppressed: list[str]


def _recipients(mail: MailRequest) -> list[str]:
    return [*mail.to, *mail.cc, *mail.bcc]


def split(mail: MailRequest, hits: set[str]) -> Split:
    """``mail`` without the recipients in ``hits`` (addresses as given in ``mail``)."""
    suppressed = [address for address in _recipients(mail) if address in hits]
    if not suppressed:
        return Split(mail, [])
    to = [address for address in mail.to if address not in hits]
    if not to:
        return Split(None, suppressed)
    remaining = mail.model_copy(
        update={
            "to": to,
            "cc": [address for address in mail.cc if address not in hits],
            "bcc": [address for address in mail.bcc if address not in hits],
        }
    )
    return Split(remaining, suppressed)


async def without_suppressed(
    suppressions: Suppressions, owner: str, mails: Sequence[MailRequest]
) -> list[Split]:
    """Each email split by the owner's list, with one lookup for all of them.

    Raises StoreUnavailable when the list does not answer.
    """
    addresses = list(dict.fromkeys(a for mail in mails for a in _recipients(mail)))
    hits = await suppressions.suppressed(owner, addresses)
    return [split(mail, hits) for mail in mails]


def all_suppressed_problem(addresses: Sequence[str]) -> str:
    return "every To recipient is on the suppression list: " + ", ".join(addresses)
