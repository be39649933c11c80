"""Which proxy the environment names for an endpoint: the standard library's reading of
HTTPS_PROXY / HTTP_PROXY and NO_PROXY, as botocore and httpx read them."""

from __future__ import annotations

import pytest

from limbo_shared.proxies import proxy_for

VARIABLES = ("HTTPS_PROXY", "HTTP_PROXY", "NO_PROXY", "https_proxy", "http_proxy", "no_proxy")


@pytest.fixture(autouse=True)
def no_proxy_settings(monkeypatch: pytest.MonkeyPatch) -> None:
    for name in VARIABLES:
        monkeypatch.delenv(name, raising=False)


def test_without_settings_every_endpoint_is_direct() -> None:
    assert proxy_for("https://sqs.eu-west-1.amazonaws.com/") is None


def test_the_proxy_is_chosen_by_the_endpoints_scheme(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("HTTPS_PROXY", "http://secure-proxy:3128")
    monkeypatch.setenv("http_proxy", "http://plain-proxy:3128")
    assert proxy_for("https://sqs.eu-west-1.amazonaws.com/") == "http://secure-proxy:3128"
    assert proxy_for("http://localstack:4566/") == "http://plain-proxy:3128"


def test_no_proxy_names_hosts_and_domains_reached_directly(
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    monkeypatch.setenv("HTTPS_PROXY", "http://proxy:3128")
    monkeypatch.setenv("NO_PROXY", "localhost,.amazonaws.com")
    assert proxy_for("https://sqs.eu-west-1.amazonaws.com/") is None
    assert proxy_for("https://localhost:4566/") is None
    assert proxy_for("https://api.mailgun.net/v3") == "http://proxy:3128"


def test_a_no_proxy_of_star_turns_proxies_off(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("HTTPS_PROXY", "http://proxy:3128")
    monkeypatch.setenv("NO_PROXY", "*")
    assert proxy_for("https://api.mailgun.net/v3") is None
