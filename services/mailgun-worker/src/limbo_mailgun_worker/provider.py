"""Mailgun: ``POST {MAILGUN_API_URL}/v3/{DOMAIN}/messages`` with form fields.

Before re-sending a message whose previous send got no answer, ``GET
/v3/{DOMAIN}/events`` looks for its ``accepted`` event by limbo's ``v:limbo_id``."""

from __future__ import annotations

import base64
import json
import re
from urllib.parse import urlencode, urlsplit

import httpx
from httpx_aiohttp import AiohttpTransport
from pydantic import Field, SecretStr, field_validator

from limbo_shared.addresses import parse_mailbox
from limbo_shared.attachments import PROVIDER_CAPS, Attachment, encoded_size
from limbo_shared.config import LoggingSettings
from limbo_shared.provider import (
    NO_ANSWER,
    PermanentProviderError,
    ProviderUnavailable,
    TransientProviderError,
)
from limbo_shared.proxies import proxy_for
from limbo_shared.schema import LIMBO_ID_TAG, QueuedMail

__all__ = ["MailgunProvider", "MailgunSettings", "form_fields", "mailgun_files"]

# 404 can be Mailgun's eventual consistency right after a domain is added: retry it.
_TRANSIENT_STATUS = frozenset({404, 408, 409, 425, 429})
# A bad or revoked key, or an account Mailgun has disabled: every message would fail alike.
_ACCOUNT_STATUS = frozenset({401, 403})
_FORM = {"Content-Type": "application/x-www-form-urlencoded"}
_UNPRINTABLE = re.compile(r"[^ -~]")
# The events lookup before a resend: short, so a slow events API delays the retry little
# (and the worker bounds it by half of SEND_TIMEOUT as well).
LOOKUP_TIMEOUT = 3.0
# Events from before the message was submitted cannot be its own; the margin covers
# clock skew between limbo's hosts and Mailgun.
_LOOKUP_SKEW_SECONDS = 300


class MailgunSettings(LoggingSettings):
    mailgun: SecretStr = Field(min_length=1, description="Mailgun API key")
    domain: str = Field(min_length=1, description="Mailgun sending domain")
    mailgun_api_url: str = Field(default="https://api.mailgun.net")
    # Sends per second for the whole deployment (Mailgun publishes no rate to read);
    # unset sends as fast as Mailgun accepts.
    mailgun_max_rate: float | None = Field(default=None, gt=0, le=100000)

    @field_validator("mailgun_api_url")
    @classmethod
    def _url(cls, value: str) -> str:
        if not value.startswith(("http://", "https://")):
            raise ValueError("must be an http(s) URL such as https://api.eu.mailgun.net")
        return value.rstrip("/")

    @field_validator("domain")
    @classmethod
    def _domain(cls, value: str) -> str:
        if "/" in value or " " in value:
            raise ValueError("must be a bare domain name such as mg.example.com")
        return value


def form_fields(mail: QueuedMail) -> list[tuple[str, str]]:
    """The message as Mailgun's form fields (repeatable keys, so a list of pairs)."""
    request = mail.mail
    # Every address as limbo writes it from the parsed mailbox, never the client's text.
    fields: list[tuple[str, str]] = [("from", _address(request.from_))]
    fields += [("to", _address(address)) for address in request.to]
    fields += [("cc", _address(address)) for address in request.cc]
    fields += [("bcc", _address(address)) for address in request.bcc]
    fields += [("subject", request.subject), ("text", request.message)]
    if request.html is not None:
        fields.append(("html", request.html))
    if request.reply_to:
        fields.append(("h:Reply-To", ", ".join(_address(a) for a in request.reply_to)))
    fields += [(f"h:{name}", value) for name, value in request.headers.items()]
    fields += [("o:tag", f"{name}:{value}") for name, value in request.tags.items()]
    # Lets a bounce or webhook be matched back to limbo's id (events carry `v:` variables
    # back as user-variables; the schema reserves the name).
    fields.append(("h:X-Limbo-Message-Id", mail.id))
    fields.append((f"v:{LIMBO_ID_TAG}", mail.id))
    return fields


def _address(value: str) -> str:
    return parse_mailbox(value).formatted


def mailgun_files(attachments: list[Attachment]) -> list[tuple[str, tuple[str, bytes, str]]]:
    """Mailgun's `attachment` and `inline` files. An inline file is named by its
    content id: Mailgun makes the file name the Content-ID that `cid:` refers to."""
    if encoded_size(attachments) > PROVIDER_CAPS["mailgun"]:
        raise PermanentProviderError(
            f"attachments exceed Mailgun's {PROVIDER_CAPS['mailgun']} bytes per message"
        )
    return [
        (
            "inline" if a.content_id else "attachment",
            (a.content_id or a.filename, a.data(), a.content_type),
        )
        for a in attachments
    ]


class MailgunProvider:
    name = "mailgun"

    def __init__(
        self,
        settings: MailgunSettings,
        *,
        max_connections: int = 100,
        timeout: float = 10.0,
        transport: httpx.AsyncBaseTransport | None = None,
    ) -> None:
        self.server_address = urlsplit(settings.mailgun_api_url).hostname or "mailgun"
        self._max_rate = settings.mailgun_max_rate
        # The request is built from parts fixed at start-up and handed straight to the
        # transport: httpx.AsyncClient.post re-merges the URL, runs the auth flow and the
        # cookie jar on every call, ~0.1 ms of CPU per email (bench/, py-spy).
        self._url = httpx.URL(f"{settings.mailgun_api_url}/v3/{settings.domain}/messages")
        self._domain_url = httpx.URL(f"{settings.mailgun_api_url}/v3/domains/{settings.domain}")
        self._events_url = httpx.URL(f"{settings.mailgun_api_url}/v3/{settings.domain}/events")
        key = settings.mailgun.get_secret_value()
        basic = base64.b64encode(f"api:{key}".encode()).decode()
        # Never repeated in a reason, even when an answer echoes the request.
        self._secrets = (key, basic)
        self._headers = {
            **_FORM,
            "Authorization": "Basic " + basic,
            "User-Agent": "limbo",
        }
        self._timeout = {"connect": 3.0, "read": timeout, "write": timeout, "pool": timeout}
        self._read_timeout = timeout
        # One pool per process: connection reuse is most of the speed of an HTTP API.
        # httpcore's pool cost ~5 ms of CPU per send at 64 in flight (it scans every
        # pooled connection per request); aiohttp's connector, behind the maintained
        # httpx-aiohttp transport, ~0.4 ms. Tests pass httpx.MockTransport instead.
        # The transport's session does not read HTTPS_PROXY/NO_PROXY itself.
        proxy = proxy_for(settings.mailgun_api_url)
        self._transport = transport or AiohttpTransport(
            limits=httpx.Limits(
                max_connections=max_connections,
                max_keepalive_connections=max_connections,
                # Servers drop idle keep-alive connections (uvicorn after 5 s).
                keepalive_expiry=4.0,
            ),
            proxy=httpx.Proxy(proxy) if proxy else None,
        )

    def _request(self, mail: QueuedMail) -> httpx.Request:
        fields = form_fields(mail)
        if not mail.mail.attachments:
            return httpx.Request(
                "POST",
                self._url,
                headers=self._headers,
                content=urlencode(fields).encode(),
                extensions={"timeout": self._timeout},
            )
        # Files make the body multipart/form-data; httpx writes the boundary header.
        data: dict[str, list[str]] = {}
        for name, value in fields:
            data.setdefault(name, []).append(value)
        headers = {k: v for k, v in self._headers.items() if k != "Content-Type"}
        return httpx.Request(
            "POST",
            self._url,
            headers=headers,
            data=data,
            files=mailgun_files(mail.mail.attachments),
            extensions={"timeout": self._timeout},
        )

    async def _exchange(self, request: httpx.Request) -> httpx.Response:
        """One request with its answer read; a transport failure is a transient error."""
        try:
            response = await self._transport.handle_async_request(request)
            try:
                await response.aread()
            finally:
                await response.aclose()
        except (httpx.ConnectTimeout, httpx.PoolTimeout) as error:
            # Never sent: no lookup needed before the retry.
            raise TransientProviderError(f"mailgun unreachable: {type(error).__name__}") from None
        except httpx.TimeoutException:
            # Sent, unanswered: Mailgun may have accepted it (the retry looks it up).
            raise TransientProviderError(
                f"{NO_ANSWER} from mailgun within {self._read_timeout:g}s"
            ) from None
        except httpx.TransportError as error:
            raise TransientProviderError(f"mailgun unreachable: {type(error).__name__}") from None
        except Exception as error:
            raise _malformed(error) from None
        return response

    async def send(self, mail: QueuedMail) -> str:
        response = await self._exchange(self._request(mail))
        if response.status_code == 200:
            try:
                return str(response.json()["id"])
            except (ValueError, KeyError, TypeError):
                return ""
        reason = f"mailgun answered {response.status_code}: {_message(response, self._secrets)}"
        if response.status_code in _ACCOUNT_STATUS:
            raise ProviderUnavailable(_account_reason(response.status_code))
        if response.status_code >= 500 or response.status_code in _TRANSIENT_STATUS:
            raise TransientProviderError(
                reason, retry_after=_retry_after(response), throttled=response.status_code == 429
            )
        raise PermanentProviderError(reason)

    async def find_accepted(self, mail: QueuedMail) -> str | None:
        """The id Mailgun gave an accepted send of ``mail``, from its ``accepted`` event
        (the ``v:limbo_id`` variable every send carries); None when there is none yet.

        Mailgun's events can lag behind acceptance: a send accepted moments ago may not
        be listed, and is then sent again.
        """
        query = {
            "event": "accepted",
            "user-variables": json.dumps({LIMBO_ID_TAG: mail.id}, separators=(",", ":")),
            "begin": str(int(mail.submitted_at) - _LOOKUP_SKEW_SECONDS),
            "ascending": "yes",
            "limit": "1",
        }
        request = httpx.Request(
            "GET",
            self._events_url.copy_merge_params(query),
            headers=self._headers,
            extensions={"timeout": dict.fromkeys(self._timeout, LOOKUP_TIMEOUT)},
        )
        response = await self._exchange(request)
        if response.status_code != 200:
            raise TransientProviderError(f"mailgun events answered {response.status_code}")
        try:
            items = response.json()["items"]
            if not items:
                return None
            message_id = items[0]["message"]["headers"]["message-id"]
        except (ValueError, KeyError, TypeError, IndexError):
            raise TransientProviderError("mailgun events answered unreadable JSON") from None
        # Events name the message without the angle brackets the send API answers with.
        return f"<{str(message_id).strip('<>')}>"

    async def max_send_rate(self) -> float | None:
        """``MAILGUN_MAX_RATE``, or None for no limit."""
        return self._max_rate

    async def probe(self) -> None:
        """``GET /v3/domains/{domain}``: authenticated, sends nothing."""
        request = httpx.Request(
            "GET", self._domain_url, headers=self._headers, extensions={"timeout": self._timeout}
        )
        response = await self._exchange(request)
        if response.status_code in _ACCOUNT_STATUS:
            raise ProviderUnavailable(_account_reason(response.status_code))
        if response.status_code == 404:
            raise ProviderUnavailable("mailgun answered 404: the domain is not in this account")
        if response.status_code != 200:
            raise TransientProviderError(f"mailgun answered {response.status_code}")

    async def aclose(self) -> None:
        await self._transport.aclose()


def _account_reason(status: int) -> str:
    what = "the API key was refused" if status == 401 else "the account may not send"
    return f"mailgun answered {status}: {what} (MAILGUN, DOMAIN)"


def _malformed(error: Exception) -> TransientProviderError:
    # A malformed answer (bad status line, oversized header) surfaces from the HTTP stack
    # as anything at all, and its text can hold the request's headers: only the class
    # name is kept.
    return TransientProviderError(f"mailgun answered malformed HTTP: {type(error).__name__}")


def _message(response: httpx.Response, secrets: tuple[str, ...]) -> str:
    """Mailgun's own explanation (its JSON `message`), as printable ASCII of at most
    200 characters with the credentials cut out; any other body is only measured."""
    try:
        body = response.json()
    except ValueError:
        body = None
    if not isinstance(body, dict) or not isinstance(body.get("message"), str):
        return f"(no JSON message; {len(response.content)} bytes)"
    text = _UNPRINTABLE.sub("?", body["message"])
    for secret in secrets:
        text = text.replace(secret, "[redacted]")
    return text[:200]


def _retry_after(response: httpx.Response) -> float | None:
    value = response.headers.get("retry-after")
    if value is None:
        return None
    try:
        return max(0.0, float(value))
    except ValueError:
        return None
