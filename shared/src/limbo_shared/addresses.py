"""One mailbox per address field: parsing ``addr`` / ``Name <addr>`` and writing it back.

Every address limbo handles (the schema, both providers) goes through :func:`parse_mailbox`.
It parses with the standard library's RFC 5322 parser and accepts a value only when it is
exactly one mailbox: ``"a@x, b@y <c@z>"`` is three addresses to a provider, so it is
refused rather than counted as one. What a provider is handed is then written by limbo
from the parsed parts (:attr:`Mailbox.formatted`, :meth:`Mailbox.ascii`), never the
client's string.
"""

from __future__ import annotations

import functools
import re
import unicodedata
from dataclasses import dataclass
from email import errors
from email.headerregistry import HeaderRegistry
from email.utils import formataddr

from email_validator import EmailNotValidError, validate_email

__all__ = ["InvalidMailbox", "Mailbox", "parse_mailbox"]

_LINE_BREAKS = re.compile(r"[\r\n\x00]")
# Defects that only mean "old but unambiguous syntax" (`Mr. X <a@b>`) or an SMTPUTF8
# local part (checked by email_validator below); any other defect is a value the parser
# had to guess about, and a guess is what lets extra recipients through.
_HARMLESS_DEFECTS = (errors.ObsoleteHeaderDefect, errors.NonASCIILocalPartDefect)
_REGISTRY = HeaderRegistry()
# A bare ASCII `dot-atom@dot-atom` (nearly every recipient): the RFC 5322 parser would
# find exactly this one mailbox with no name and no defect, so it is skipped; at ~0.1 ms
# it was a third of the API's own CPU per request, and recipients rarely repeat.
_ATOM = r"[A-Za-z0-9!#$%&'*+/=?^_`{|}~-]+"
_PLAIN_ADDRESS = re.compile(rf"{_ATOM}(?:\.{_ATOM})*@{_ATOM}(?:\.{_ATOM})*")
# RFC 5322 specials: a display name holding one is written as a quoted string.
_SPECIALS = re.compile(r'[()<>@,;:\\".\[\]]')


class InvalidMailbox(ValueError):
    """Not exactly one valid mailbox; the message says why, without echoing the value."""


@dataclass(frozen=True)
class Mailbox:
    display_name: str
    # `local@domain`, the domain as email_validator normalised it (Unicode, lower case).
    addr_spec: str

    @property
    def domain(self) -> str:
        return self.addr_spec.rpartition("@")[2]

    @property
    def formatted(self) -> str:
        """``addr`` or ``Name <addr>``, the name quoted by limbo when needed; may hold UTF-8."""
        if not self.display_name:
            return self.addr_spec
        name = self.display_name
        if _SPECIALS.search(name) or name != name.strip():
            name = '"' + name.replace("\\", "\\\\").replace('"', '\\"') + '"'
        return f"{name} <{self.addr_spec}>"

    def ascii(self) -> str:
        """The mailbox in 7-bit ASCII (what SES takes): the domain in Punycode and a
        non-ASCII display name as an RFC 2047 encoded-word.

        Raises InvalidMailbox for a non-ASCII local part, which only SMTPUTF8 can carry.
        """
        local, _, domain = self.addr_spec.rpartition("@")
        if not local.isascii():
            raise InvalidMailbox(
                "a non-ASCII local part needs SMTPUTF8, which this provider does not support"
            )
        if not domain.isascii():
            domain = domain.encode("idna").decode("ascii")
        return formataddr((self.display_name, f"{local}@{domain}"), charset="utf-8")


# Parsing costs ~0.1 ms and validating ~25 µs; senders repeat on nearly every message, on
# the API and again on the worker and in the provider, so answers for valid values are
# kept. Invalid ones raise and are never cached.
@functools.lru_cache(maxsize=4096)
def parse_mailbox(value: str) -> Mailbox:
    """Exactly one mailbox, or InvalidMailbox."""
    if _LINE_BREAKS.search(value):
        raise InvalidMailbox("must not contain CR, LF or NUL (header injection)")
    value = value.strip()
    if _PLAIN_ADDRESS.fullmatch(value):
        return Mailbox(display_name="", addr_spec=_check_address(value))
    return _parse_header(value)


def _parse_header(value: str) -> Mailbox:
    """The RFC 5322 parser's reading of ``value`` (stripped, without line breaks)."""
    if value.startswith(",") or value.endswith(","):
        raise InvalidMailbox("must be exactly one mailbox (`addr` or `Name <addr>`), not a list")
    try:
        header = _REGISTRY("To", value)
    except (IndexError, ValueError):
        # The stdlib parser raises on some malformed input instead of noting a defect
        # (an IndexError was found by the property tests): that is a refusal, not a 500.
        raise InvalidMailbox("is not a valid mailbox (`addr` or `Name <addr>`)") from None
    addresses = header.addresses  # type: ignore[attr-defined]
    if any(group.display_name is not None for group in header.groups):  # type: ignore[attr-defined]
        raise InvalidMailbox("must be one mailbox, not a group")
    if len(addresses) != 1:
        raise InvalidMailbox(
            f"must be exactly one mailbox (`addr` or `Name <addr>`), found {len(addresses)}"
        )
    if any(not isinstance(defect, _HARMLESS_DEFECTS) for defect in header.defects):
        if not any(c in value for c in '<>,;"'):
            _check_address(value)  # a bare address: say what is wrong with it
        raise InvalidMailbox("is not a valid mailbox (`addr` or `Name <addr>`)")
    [address] = addresses
    name = address.display_name
    if any(unicodedata.category(c) in ("Cc", "Cs") for c in name):
        raise InvalidMailbox("the display name must not contain control characters")
    return Mailbox(display_name=name, addr_spec=_check_address(address.addr_spec))


def _check_address(addr_spec: str) -> str:
    try:
        checked = validate_email(addr_spec, check_deliverability=False, allow_smtputf8=True)
    except EmailNotValidError as error:
        raise InvalidMailbox(f"not a valid email address: {error}") from None
    return checked.normalized
