"""Where webhooks may go: no loopback, private, link-local, CGNAT, multicast or metadata
addresses (IPv4 and IPv6, IPv4 embedded in IPv6 included), https only, unless the
operator allows them.

The API checks a URL when it is registered (a clear 422 at once); the worker checks
every address the name resolves to when it connects, and connects to the address it
checked (see limbo_webhooks.transport), so a name that later resolves somewhere
internal (DNS rebinding) is refused too.
"""

from __future__ import annotations

import ipaddress
from dataclasses import dataclass
from functools import cached_property
from urllib.parse import urlsplit

from pydantic import field_validator
from pydantic_settings import BaseSettings, SettingsConfigDict

__all__ = ["DestinationSettings", "Destinations", "Refused", "is_public"]

IPAddress = ipaddress.IPv4Address | ipaddress.IPv6Address
IPNetwork = ipaddress.IPv4Network | ipaddress.IPv6Network

MAX_URL_LENGTH = 2048
# A URL is ASCII (RFC 3986: anything else is percent-encoded, hosts IDNA-encoded),
# printable and without spaces: what the API's schema states and its model enforces.
URL_PATTERN = "^[!-~]+$"
# NAT64 (RFC 6052) carries an IPv4 address in its last 32 bits.
_NAT64 = ipaddress.IPv6Network("64:ff9b::/96")
_NAT64_LOCAL = ipaddress.IPv6Network("64:ff9b:1::/48")


class Refused(Exception):
    """A destination webhooks may not go to; the text says why, in limbo's words."""


def _embedded_ipv4(address: ipaddress.IPv6Address) -> ipaddress.IPv4Address | None:
    if address.ipv4_mapped is not None:
        return address.ipv4_mapped
    if address.sixtofour is not None:
        return address.sixtofour
    if address.teredo is not None:
        return address.teredo[1]
    if address in _NAT64:
        return ipaddress.IPv4Address(int(address) & 0xFFFFFFFF)
    return None


def is_public(address: IPAddress) -> bool:
    """Globally routable unicast: not loopback, private, link-local (the 169.254.169.254
    metadata service), CGNAT (100.64.0.0/10), multicast, reserved or unspecified."""
    if isinstance(address, ipaddress.IPv6Address):
        if address in _NAT64_LOCAL:
            return False
        embedded = _embedded_ipv4(address)
        if embedded is not None:
            return is_public(embedded)
    # is_global is False for private, loopback, link-local, CGNAT, reserved, documentation
    # and unspecified ranges; multicast has a few "global" blocks, refused all the same.
    return address.is_global and not address.is_multicast


class DestinationSettings(BaseSettings):
    """Mixed into the API's and the webhook worker's settings: both apply the same rules."""

    model_config = SettingsConfigDict(case_sensitive=False, extra="ignore")

    # Comma-separated host names, addresses or CIDR blocks webhooks may reach although
    # they are not public (a receiver inside the cluster, 127.0.0.1 in the local run).
    webhook_allow_hosts: str = ""
    # Plain http endpoints; off in production, where a webhook carries a signature only.
    webhook_allow_http: bool = False

    @field_validator("webhook_allow_hosts")
    @classmethod
    def _entries(cls, value: str) -> str:
        for entry in _split(value):
            if "/" in entry:
                try:
                    ipaddress.ip_network(entry, strict=False)
                except ValueError:
                    raise ValueError(f"{entry!r} is not a CIDR block") from None
        return value

    @cached_property
    def destinations(self) -> Destinations:
        names: set[str] = set()
        networks: list[IPNetwork] = []
        for entry in _split(self.webhook_allow_hosts):
            try:
                networks.append(ipaddress.ip_network(entry, strict=False))
            except ValueError:
                names.add(entry.lower().rstrip("."))
        return Destinations(frozenset(names), tuple(networks), self.webhook_allow_http)


def _loopback_name(host: str) -> bool:
    # RFC 6761: localhost and its subdomains are loopback, whatever a resolver says.
    return host.lower() == "localhost" or host.lower().endswith(".localhost")


def _split(value: str) -> list[str]:
    return [entry.strip() for entry in value.split(",") if entry.strip()]


@dataclass(frozen=True)
class Destinations:
    allowed_names: frozenset[str] = frozenset()
    allowed_networks: tuple[IPNetwork, ...] = ()
    allow_http: bool = False

    def check_url(self, url: str) -> tuple[str, str, int]:
        """(scheme, host, port) of a URL webhooks may be sent to, or Refused."""
        if len(url) > MAX_URL_LENGTH:
            raise Refused(f"url is longer than {MAX_URL_LENGTH} characters")
        try:
            parts = urlsplit(url)
            port = parts.port
        except ValueError:
            raise Refused("url is not a valid URL") from None
        scheme, host = parts.scheme.lower(), (parts.hostname or "").rstrip(".")
        if scheme not in ("https", "http"):
            raise Refused("url must be an https:// URL")
        if scheme == "http" and not self.allow_http:
            raise Refused("url must be https (plain http is not allowed on this deployment)")
        if not host or not host.isascii() or any(c.isspace() for c in url):
            raise Refused("url must name a host (ASCII; IDNA-encode international names)")
        if parts.username is not None or parts.password is not None:
            raise Refused("url must not carry credentials (user:password@)")
        if parts.fragment:
            raise Refused("url must not have a #fragment")
        try:
            literal: IPAddress | None = ipaddress.ip_address(host)
        except ValueError:
            literal = None
        if literal is not None:
            self.check_address(host, literal)
        elif _loopback_name(host) and host.lower() not in self.allowed_names:
            raise Refused(f"{host} is a loopback name")
        return scheme, host, port or (443 if scheme == "https" else 80)

    def check_address(self, host: str, address: IPAddress) -> None:
        """Refused unless ``address`` (one that ``host`` resolved to) may be reached."""
        if is_public(address) or host.lower() in self.allowed_names:
            return
        if any(address in network for network in self.allowed_networks):
            return
        raise Refused(f"{host} resolves to a non-public address")
