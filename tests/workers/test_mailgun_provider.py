"""The Mailgun provider: form fields, auth, and how answers are classified."""

from __future__ import annotations

import asyncio
from typing import Any

import httpx
import pytest

from limbo_mailgun_worker.provider import (
    LOOKUP_TIMEOUT,
    MailgunProvider,
    MailgunSettings,
    form_fields,
)
from limbo_shared.provider import (
    PermanentProviderError,
    ProviderUnavailable,
    TransientProviderError,
    unanswered,
)
from limbo_shared.schema import MailRequest, QueuedMail

from ..conftest import sink_messages
from ..holding_proxy import HoldingProxy


def envelope(**fields: object) -> QueuedMail:
    mail = MailRequest.model_validate(
        {
            "from": "a@example.com",
            "to": ["b@example.com", "c@example.com"],
            "subject": "S",
            "message": "T",
            **fields,
        }
    )
    return QueuedMail(id="m-1", owner="default", submitted_at=0.0, mail=mail)


def settings(url: str = "https://api.mailgun.net", key: str = "key-test") -> MailgunSettings:
    return MailgunSettings(mailgun=key, domain="mg.example.com", mailgun_api_url=url)


def test_form_fields_repeat_recipients_and_map_extras() -> None:
    fields = form_fields(
        envelope(
            cc=["d@example.com"],
            bcc=["e@example.com"],
            html="<p>",
            reply_to=["r@example.com"],
            headers={"X-Campaign": "7"},
            tags={"kind": "welcome"},
        )
    )
    assert fields.count(("to", "b@example.com")) == 1 and ("to", "c@example.com") in fields
    assert ("cc", "d@example.com") in fields and ("bcc", "e@example.com") in fields
    assert ("html", "<p>") in fields and ("h:Reply-To", "r@example.com") in fields
    assert ("h:X-Campaign", "7") in fields and ("o:tag", "kind:welcome") in fields
    assert ("h:X-Limbo-Message-Id", "m-1") in fields
    # Comes back in every webhook's user-variables.
    assert ("v:limbo_id", "m-1") in fields


def run(provider: MailgunProvider, mail: QueuedMail) -> str:
    async def go() -> str:
        try:
            return await provider.send(mail)
        finally:
            await provider.aclose()

    return asyncio.run(go())


@pytest.mark.parametrize(
    "status,error",
    [
        (400, PermanentProviderError),
        (401, ProviderUnavailable),
        (403, ProviderUnavailable),
        (429, TransientProviderError),
        (500, TransientProviderError),
        (503, TransientProviderError),
        (404, TransientProviderError),
    ],
)
def test_status_classification(status: int, error: type[Exception]) -> None:
    def answer(request: httpx.Request) -> httpx.Response:
        return httpx.Response(status, json={"message": "nope"}, headers={"Retry-After": "7"})

    provider = MailgunProvider(settings(), transport=httpx.MockTransport(answer))
    with pytest.raises(error) as raised:
        run(provider, envelope())
    if status == 429:
        assert raised.value.retry_after == 7.0  # type: ignore[attr-defined]
    if isinstance(raised.value, TransientProviderError):
        # Only "too many requests" lowers the shared send rate.
        assert raised.value.throttled is (status == 429)


def test_request_uses_basic_auth_and_domain_path() -> None:
    seen: list[httpx.Request] = []

    def answer(request: httpx.Request) -> httpx.Response:
        seen.append(request)
        return httpx.Response(200, json={"id": "<x@mg>", "message": "Queued. Thank you."})

    provider = MailgunProvider(
        settings(url="https://api.eu.mailgun.net"), transport=httpx.MockTransport(answer)
    )
    assert run(provider, envelope()) == "<x@mg>"
    assert seen[0].url == "https://api.eu.mailgun.net/v3/mg.example.com/messages"
    assert seen[0].headers["authorization"].startswith("Basic ")


def test_timeout_is_transient() -> None:
    def answer(request: httpx.Request) -> httpx.Response:
        raise httpx.ReadTimeout("slow", request=request)

    with pytest.raises(TransientProviderError) as raised:
        run(MailgunProvider(settings(), transport=httpx.MockTransport(answer)), envelope())
    # Sent but unanswered: Mailgun may have accepted it, so the retry looks it up first.
    assert unanswered(raised.value.reason)


def test_a_connect_timeout_is_transient_and_not_worth_a_lookup() -> None:
    def answer(request: httpx.Request) -> httpx.Response:
        raise httpx.ConnectTimeout("no route", request=request)

    with pytest.raises(TransientProviderError) as raised:
        run(MailgunProvider(settings(), transport=httpx.MockTransport(answer)), envelope())
    assert not unanswered(raised.value.reason)


def find(provider: MailgunProvider, mail: QueuedMail) -> str | None:
    async def go() -> str | None:
        try:
            return await provider.find_accepted(mail)
        finally:
            await provider.aclose()

    return asyncio.run(go())


def test_the_lookup_asks_the_events_api_for_the_accepted_event_by_limbos_id() -> None:
    seen: list[httpx.Request] = []

    def answer(request: httpx.Request) -> httpx.Response:
        seen.append(request)
        item = {"event": "accepted", "message": {"headers": {"message-id": "x@mg"}}}
        return httpx.Response(200, json={"items": [item], "paging": {}})

    mail = envelope().model_copy(update={"submitted_at": 1_800_000_000.5})
    assert find(MailgunProvider(settings(), transport=httpx.MockTransport(answer)), mail) == (
        "<x@mg>"
    )
    [request] = seen
    assert request.method == "GET"
    assert request.url.path == "/v3/mg.example.com/events"
    assert dict(request.url.params) == {
        "event": "accepted",
        "user-variables": '{"limbo_id":"m-1"}',
        "begin": str(1_800_000_000 - 300),
        "ascending": "yes",
        "limit": "1",
    }
    assert request.headers["authorization"].startswith("Basic ")
    assert request.extensions["timeout"]["read"] == LOOKUP_TIMEOUT


@pytest.mark.parametrize(
    "response",
    [
        httpx.Response(500, json={"message": "later"}),
        httpx.Response(401, text="Forbidden"),
        httpx.Response(200, text="not json"),
        httpx.Response(200, json={"paging": {}}),
    ],
)
def test_a_lookup_that_gets_no_usable_answer_raises_so_the_worker_resends(
    response: httpx.Response,
) -> None:
    def answer(request: httpx.Request) -> httpx.Response:
        return response

    with pytest.raises(TransientProviderError):
        find(MailgunProvider(settings(), transport=httpx.MockTransport(answer)), envelope())


def test_the_lookup_against_the_sink_finds_only_what_it_accepted(sink: str) -> None:
    sent = run(MailgunProvider(settings(url=sink)), envelope())
    assert find(MailgunProvider(settings(url=sink)), envelope()) == sent
    other = envelope().model_copy(update={"id": "m-2"})
    assert find(MailgunProvider(settings(url=sink)), other) is None


def test_delivers_to_a_real_http_sink(sink: str) -> None:
    provider_id = run(MailgunProvider(settings(url=sink)), envelope(cc=["d@example.com"]))
    [message] = sink_messages(sink)
    assert message["id"] == provider_id
    assert message["fields"]["to"] == ["b@example.com", "c@example.com"]  # type: ignore[index]
    assert message["fields"]["cc"] == ["d@example.com"]  # type: ignore[index]


def test_sends_through_the_proxy_https_proxy_or_http_proxy_names(
    sink: str, monkeypatch: pytest.MonkeyPatch
) -> None:
    proxy = HoldingProxy(sink)  # forwards what it is asked for: a real proxy
    monkeypatch.setenv("HTTP_PROXY", proxy.url)  # the sink's URL is http://
    for name in ("http_proxy", "NO_PROXY", "no_proxy"):
        monkeypatch.delenv(name, raising=False)
    try:
        provider_id = run(MailgunProvider(settings(url=sink)), envelope())
    finally:
        proxy.close()
    assert [message["id"] for message in sink_messages(sink)] == [provider_id]
    assert proxy.seen("") == 1  # the send, through the proxy (it names no AWS target)


def test_a_wrong_key_is_account_level_against_the_sink(sink_factory: Any) -> None:
    sink = sink_factory(SINK_API_KEY="key-right")
    with pytest.raises(ProviderUnavailable, match="401"):
        run(MailgunProvider(settings(url=sink, key="wrong")), envelope())
    assert sink_messages(sink) == []


def probe(provider: MailgunProvider) -> None:
    async def go() -> None:
        try:
            await provider.probe()
        finally:
            await provider.aclose()

    asyncio.run(go())


def test_the_probe_asks_for_the_domain_with_the_key_and_sends_nothing(
    sink_factory: Any,
) -> None:
    sink = sink_factory(SINK_API_KEY="key-right")
    probe(MailgunProvider(settings(url=sink, key="key-right")))
    with pytest.raises(ProviderUnavailable, match="401"):
        probe(MailgunProvider(settings(url=sink, key="key-revoked")))
    assert sink_messages(sink) == []


@pytest.mark.parametrize(
    "status,error",
    [(401, ProviderUnavailable), (404, ProviderUnavailable), (502, TransientProviderError)],
)
def test_a_probe_that_is_refused_or_unanswered_raises(status: int, error: type[Exception]) -> None:
    seen: list[httpx.Request] = []

    def answer(request: httpx.Request) -> httpx.Response:
        seen.append(request)
        return httpx.Response(status, json={"message": "no"})

    with pytest.raises(error):
        probe(MailgunProvider(settings(), transport=httpx.MockTransport(answer)))
    assert seen[0].method == "GET"
    assert seen[0].url == "https://api.mailgun.net/v3/domains/mg.example.com"


def test_each_address_is_sent_as_limbo_writes_its_one_mailbox() -> None:
    # A display name that lists addresses stays a (quoted) name: one `to`, one recipient.
    fields = form_fields(
        envelope(
            to=['"x1@evil.example, x2@evil.example" <ok@example.com>'],
            **{"from": "Ann <a@Example.COM>"},
        )
    )
    assert [value for name, value in fields if name == "to"] == [
        '"x1@evil.example, x2@evil.example" <ok@example.com>'
    ]
    assert ("from", "Ann <a@example.com>") in fields


def test_each_send_carries_limbos_id_as_a_variable() -> None:
    # Mailgun's events API and webhooks give `v:` variables back as user-variables.
    assert ("v:limbo_id", "m-1") in form_fields(envelope())


KEY = "key-0123456789abcdef0123456789abcdef"


@pytest.mark.parametrize(
    "body",
    [
        {"json": {"message": f"bad request: Authorization: Basic api:{KEY}\r\nX: y"}},
        {"content": f"<html>Authorization: {KEY}</html>".encode()},
    ],
)
def test_a_refusal_reason_never_repeats_the_key_or_a_raw_body(body: dict[str, object]) -> None:
    def answer(request: httpx.Request) -> httpx.Response:
        return httpx.Response(400, **body)  # type: ignore[arg-type]

    provider = MailgunProvider(settings(key=KEY), transport=httpx.MockTransport(answer))
    with pytest.raises(PermanentProviderError) as raised:
        run(provider, envelope())
    reason = raised.value.reason
    assert KEY not in reason and "\r" not in reason and "\n" not in reason
    assert reason.startswith("mailgun answered 400: ")


def test_anything_the_http_stack_raises_is_transient_and_named_by_class_only() -> None:
    def answer(request: httpx.Request) -> httpx.Response:
        raise ValueError(f"bad status line; request headers {dict(request.headers)}")

    provider = MailgunProvider(settings(key=KEY), transport=httpx.MockTransport(answer))
    with pytest.raises(TransientProviderError) as raised:
        run(provider, envelope())
    assert raised.value.reason == "mailgun answered malformed HTTP: ValueError"
