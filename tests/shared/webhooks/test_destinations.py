"""Which addresses webhooks may reach, and what the operator's allow-list changes."""

from __future__ import annotations

import ipaddress

import pytest

from limbo_shared.webhooks import DestinationSettings, Refused, is_public

REFUSED = [
    "127.0.0.1",
    "127.8.9.10",
    "10.0.0.1",
    "172.16.5.4",
    "192.168.0.1",
    "169.254.169.254",  # the cloud metadata service
    "100.64.0.1",  # CGNAT
    "100.100.100.200",  # Alibaba's metadata service, inside CGNAT
    "0.0.0.0",
    "224.0.0.1",
    "239.255.255.250",
    "255.255.255.255",
    "192.0.2.1",  # documentation
    "::1",
    "::",
    "fe80::1",
    "fc00::1",
    "fd00:ec2::254",  # AWS's IPv6 metadata service
    "ff02::1",
    "::ffff:127.0.0.1",  # IPv4-mapped
    "::ffff:169.254.169.254",
    "64:ff9b::7f00:1",  # NAT64 of 127.0.0.1
    "64:ff9b::a9fe:a9fe",  # NAT64 of 169.254.169.254
    "2002:7f00:1::",  # 6to4 of 127.0.0.1
    "2002:a00:1::",  # 6to4 of 10.0.0.1
]
PUBLIC = ["93.184.215.14", "8.8.8.8", "2606:4700:4700::1111", "::ffff:8.8.8.8", "64:ff9b::808:808"]


@pytest.mark.parametrize("address", REFUSED)
def test_non_public_addresses_are_refused(address: str) -> None:
    assert not is_public(ipaddress.ip_address(address))


@pytest.mark.parametrize("address", PUBLIC)
def test_public_addresses_are_allowed(address: str) -> None:
    assert is_public(ipaddress.ip_address(address))


def test_the_allow_list_takes_names_addresses_and_blocks() -> None:
    rules = DestinationSettings(
        webhook_allow_hosts="receiver.internal, 127.0.0.1 ,10.20.0.0/16"
    ).destinations
    rules.check_address("x", ipaddress.ip_address("127.0.0.1"))
    rules.check_address("x", ipaddress.ip_address("10.20.3.4"))
    rules.check_address("receiver.internal", ipaddress.ip_address("192.168.1.1"))
    for address in ("127.0.0.2", "10.21.0.1", "::ffff:127.0.0.1"):
        with pytest.raises(Refused, match="non-public"):
            rules.check_address("x", ipaddress.ip_address(address))


def test_a_malformed_block_names_the_variable() -> None:
    from limbo_shared.config import ConfigError, load_settings

    with pytest.MonkeyPatch.context() as patch:
        patch.setenv("WEBHOOK_ALLOW_HOSTS", "10.0.0.0/33")
        with pytest.raises(ConfigError, match="WEBHOOK_ALLOW_HOSTS is invalid"):
            load_settings(DestinationSettings)


def test_urls_https_only_unless_allowed() -> None:
    strict = DestinationSettings().destinations
    assert strict.check_url("https://hooks.example.com/x?y=1") == (
        "https",
        "hooks.example.com",
        443,
    )
    with pytest.raises(Refused, match="must be https"):
        strict.check_url("http://hooks.example.com/")
    relaxed = DestinationSettings(webhook_allow_http=True).destinations
    assert relaxed.check_url("http://hooks.example.com:8080/") == (
        "http",
        "hooks.example.com",
        8080,
    )
    for url in ("https://localhost/", "https://a.localhost/", "https://[::1]:8443/"):
        with pytest.raises(Refused):
            relaxed.check_url(url)
