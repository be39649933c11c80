"""Who may send as whom: the sender domains each API key's ``from`` may use.

``SENDER_DOMAINS`` is the deployment's list, ``KEY_SENDER_DOMAINS`` overrides it per key
name. A domain allows exactly itself; ``*.example.com`` allows the subdomains of
example.com (not example.com itself); ``*`` allows any domain. Unset means any domain,
which the API says at start-up. Both workers then send the From the client asked for.
"""

from __future__ import annotations

import re
from dataclasses import dataclass

from limbo_shared.addresses import parse_mailbox
from limbo_shared.config import ConfigError

from .auth import NAME_PATTERN

__all__ = ["SenderPolicy"]

_LABEL = re.compile(r"^(?!-)[a-z0-9-]{1,63}(?<!-)$")


def _ascii(domain: str) -> str:
    return domain.rstrip(".").lower().encode("idna").decode("ascii")


def _domains(text: str, variable: str) -> frozenset[str]:
    domains = set()
    for raw in re.split(r"[\s|,]+", text.strip()):
        if not raw:
            continue
        if raw == "*":
            domains.add("*")
            continue
        wildcard = raw.startswith("*.")
        try:
            domain = _ascii(raw.removeprefix("*."))
        except UnicodeError:
            raise ConfigError(f"{variable}: {raw!r} is not a domain name") from None
        if not all(_LABEL.match(label) for label in domain.split(".")) or "." not in domain:
            raise ConfigError(f"{variable}: {raw!r} is not a domain name such as example.com")
        domains.add(f"*.{domain}" if wildcard else domain)
    if not domains:
        raise ConfigError(f"{variable}: no domain given (use * to allow any)")
    return frozenset(domains)


@dataclass(frozen=True)
class SenderPolicy:
    default: frozenset[str] | None
    per_key: dict[str, frozenset[str]]

    @classmethod
    def parse(cls, default: str | None, per_key: str | None) -> SenderPolicy:
        """From SENDER_DOMAINS and KEY_SENDER_DOMAINS; raises ConfigError naming them."""
        keys: dict[str, frozenset[str]] = {}
        for entry in (per_key or "").split(","):
            if not entry.strip():
                continue
            name, _, domains = entry.partition("=")
            name = name.strip()
            if not NAME_PATTERN.match(name) or not domains.strip():
                raise ConfigError(
                    "KEY_SENDER_DOMAINS: entries are name=domain|domain, separated by commas"
                )
            keys[name] = _domains(domains, f"KEY_SENDER_DOMAINS ({name})")
        return cls(_domains(default, "SENDER_DOMAINS") if default else None, keys)

    @property
    def unrestricted(self) -> bool:
        return self.default is None or "*" in self.default

    def allowed(self, owner: str) -> frozenset[str] | None:
        """The domains ``owner`` may send from; None for any."""
        domains = self.per_key.get(owner, self.default)
        return None if domains is None or "*" in domains else domains

    def allows(self, owner: str, sender: str) -> bool:
        domains = self.allowed(owner)
        if domains is None:
            return True
        try:
            domain = _ascii(parse_mailbox(sender).domain)
        except UnicodeError:
            return False
        parent = domain.partition(".")[2]
        while parent:
            if f"*.{parent}" in domains:
                return True
            parent = parent.partition(".")[2]
        return domain in domains
