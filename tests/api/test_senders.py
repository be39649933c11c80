"""Who may send as whom: each key's `from` within its allowed sender domains."""

from __future__ import annotations

import pytest

from limbo_api.senders import SenderPolicy
from limbo_devtools.local_aws import LocalAws
from limbo_shared.config import ConfigError
from limbo_shared.schema import QueuedMail

from .conftest import ALICE_KEY, BOB_KEY, VALID, ApiFactory, bearer
from .test_routes import receive_all


def test_a_from_outside_the_keys_domains_is_403_and_nothing_is_queued(
    tracked_api_factory: ApiFactory, tracked_aws: LocalAws
) -> None:
    api = tracked_api_factory(
        sender_domains="example.com", key_sender_domains="bob=bob.example|*.bob.example"
    )
    outside = api.post(
        "/v1/mail", json={**VALID, "from": "a@evil.example"}, headers=bearer(ALICE_KEY)
    )
    assert outside.status_code == 403
    assert outside.json() == {
        "Message": "not submitted",
        "Problem": "from: this API key may send only from these domains: example.com",
    }
    # A key's own list replaces the deployment's: bob may not use example.com.
    assert api.post("/v1/mail", json=VALID, headers=bearer(BOB_KEY)).status_code == 403
    assert receive_all(tracked_aws) == []

    allowed = [
        (ALICE_KEY, "Ann <ann@Example.COM>"),
        (BOB_KEY, "b@bob.example"),
        (BOB_KEY, "b@mail.bob.example"),
    ]
    for key, sender in allowed:
        response = api.post("/v1/mail", json={**VALID, "from": sender}, headers=bearer(key))
        assert response.status_code == 200, sender
    queued = [QueuedMail.from_json(m["Body"]).mail.from_ for m in receive_all(tracked_aws)]
    assert sorted(queued) == sorted(
        ["Ann <ann@example.com>", "b@bob.example", "b@mail.bob.example"]
    )


@pytest.mark.parametrize(
    "default,per_key,owner,sender,allowed",
    [
        (None, None, "alice", "a@anything.example", True),
        ("*", None, "alice", "a@anything.example", True),
        ("example.com", None, "alice", "a@sub.example.com", False),
        ("*.example.com", None, "alice", "a@example.com", False),
        ("*.example.com", None, "alice", "a@deep.sub.example.com", True),
        ("example.com", "alice=*", "alice", "a@other.example", True),
        ("bücher.example", None, "alice", "a@xn--bcher-kva.example", True),
        ("xn--bcher-kva.example", None, "alice", "a@BÜCHER.example", True),
        ("example.com", None, "alice", "a@example.com.evil.example", False),
    ],
)
def test_domain_rules(
    default: str | None, per_key: str | None, owner: str, sender: str, allowed: bool
) -> None:
    assert SenderPolicy.parse(default, per_key).allows(owner, sender) is allowed


@pytest.mark.parametrize(
    "default,per_key,variable",
    [
        ("not a domain!", None, "SENDER_DOMAINS"),
        (",", None, "SENDER_DOMAINS"),
        (None, "alice", "KEY_SENDER_DOMAINS"),
        (None, "al ice=example.com", "KEY_SENDER_DOMAINS"),
        (None, "alice=exa_mple.com", "KEY_SENDER_DOMAINS (alice)"),
    ],
)
def test_malformed_domains_are_a_config_error_naming_the_variable(
    default: str | None, per_key: str | None, variable: str
) -> None:
    with pytest.raises(ConfigError, match=variable.replace("(", r"\(").replace(")", r"\)")):
        SenderPolicy.parse(default, per_key)
