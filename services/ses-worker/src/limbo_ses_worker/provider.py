"""AWS SES v2 ``SendEmail`` with Simple content."""

from __future__ import annotations

import asyncio
import functools
import re
from concurrent.futures import ThreadPoolExecutor
from typing import Any
from urllib.parse import urlsplit

from botocore.exceptions import BotoCoreError, ClientError
from pydantic import Field, field_validator

from limbo_shared.addresses import InvalidMailbox, parse_mailbox
from limbo_shared.aws import make_client
from limbo_shared.config import LoggingSettings
from limbo_shared.provider import PermanentProviderError, TransientProviderError
from limbo_shared.schema import LIMBO_ID_TAG, QueuedMail

__all__ = ["SesProvider", "SesSettings", "send_email_request", "ses_address"]

# Refusals that no retry will fix without an operator or a client changing something.
_PERMANENT = frozenset(
    {
        "MessageRejected",
        "MailFromDomainNotVerifiedException",
        "AccountSuspendedException",
        "SendingPausedException",
        "BadRequestException",
        "NotFoundException",
        "InvalidParameterValue",
        "ValidationException",
    }
)


_ERROR_CODE = re.compile(r"^[A-Za-z0-9.:_-]{1,100}$")


class SesSettings(LoggingSettings):
    # Deprecated: SES sends from the client's `from` (allowed by SENDER_DOMAINS at the
    # API). Still read so that a deployment that sets it is told at start-up.
    sessource: str | None = Field(default=None, description="deprecated, unused")
    region: str = Field(min_length=1)
    aws_endpoint_url: str | None = None
    ses_configuration_set: str | None = Field(
        default=None, description="configuration set for SES event publishing"
    )
    # The deployment's allowed sender domains, compared with SES's verified identities.
    sender_domains: str | None = None

    @field_validator("sessource", "sender_domains", mode="before")
    @classmethod
    def _empty_is_unset(cls, value: object) -> object:
        return None if value == "" else value


def _domains(value: str | None) -> list[str] | None:
    if value is None:
        return None
    domains = [d.strip().lower() for d in value.split(",") if d.strip()]
    return None if "*" in domains or not domains else domains


def ses_address(value: str) -> str:
    """An address as SES takes it, written from its parsed parts in 7-bit ASCII (SES has
    no SMTPUTF8): the domain in Punycode and a non-ASCII display name as an encoded-word.
    A non-ASCII local part cannot be sent through SES at all: a permanent rejection.
    """
    try:
        return parse_mailbox(value).ascii()
    except InvalidMailbox as error:
        raise PermanentProviderError(f"SES cannot take an address: {error}") from None


def send_email_request(mail: QueuedMail, configuration_set: str | None = None) -> dict[str, Any]:
    """The SendEmail arguments for one message: From is the client's, as the API allowed it."""
    request = mail.mail
    body: dict[str, Any] = {"Text": {"Data": request.message, "Charset": "UTF-8"}}
    if request.html is not None:
        body["Html"] = {"Data": request.html, "Charset": "UTF-8"}
    simple: dict[str, Any] = {
        "Subject": {"Data": request.subject, "Charset": "UTF-8"},
        "Body": body,
    }
    # The schema leaves room for this one (at most 14 of the client's, SES takes 15).
    headers = [{"Name": n, "Value": v} for n, v in request.headers.items()]
    headers.append({"Name": "X-Limbo-Message-Id", "Value": mail.id})
    simple["Headers"] = headers
    destination: dict[str, list[str]] = {"ToAddresses": [ses_address(a) for a in request.to]}
    if request.cc:
        destination["CcAddresses"] = [ses_address(a) for a in request.cc]
    if request.bcc:
        destination["BccAddresses"] = [ses_address(a) for a in request.bcc]
    arguments: dict[str, Any] = {
        "FromEmailAddress": ses_address(request.from_),
        "Destination": destination,
        "Content": {"Simple": simple},
    }
    if request.reply_to:
        arguments["ReplyToAddresses"] = [ses_address(a) for a in request.reply_to]
    tags = [{"Name": n, "Value": v} for n, v in request.tags.items()]
    # The schema reserves this name: SES events carry it back to limbo's id.
    tags.append({"Name": LIMBO_ID_TAG, "Value": mail.id})
    arguments["EmailTags"] = tags
    if configuration_set:
        arguments["ConfigurationSetName"] = configuration_set
    return arguments


class SesProvider:
    name = "ses"

    def __init__(self, settings: SesSettings, *, max_connections: int = 50) -> None:
        self._settings = settings
        self._client = make_client(
            "sesv2",
            region=settings.region,
            endpoint_url=settings.aws_endpoint_url,
            read_timeout=10.0,
            max_attempts=1,  # the worker retries through the queue, with backoff
            max_pool_connections=max_connections,
        )
        self.server_address = urlsplit(self._client.meta.endpoint_url).hostname or "ses"
        self._executor = ThreadPoolExecutor(max_workers=max_connections, thread_name_prefix="ses")

    async def send(self, mail: QueuedMail) -> str:
        arguments = send_email_request(mail, self._settings.ses_configuration_set)
        loop = asyncio.get_running_loop()
        try:
            response = await loop.run_in_executor(
                self._executor, functools.partial(self._client.send_email, **arguments)
            )
        except ClientError as error:
            info = error.response.get("Error", {})
            code = str(info.get("Code", "Unknown"))
            status = int(error.response.get("ResponseMetadata", {}).get("HTTPStatusCode", 0))
            # Only the error code (an identifier, checked) and the status: AWS's message
            # text and botocore's exception text can repeat request parts.
            code = code if _ERROR_CODE.match(code) else "Unknown"
            reason = f"SES {code} (HTTP {status})"
            message = str(info.get("Message", ""))
            if code in _PERMANENT or (400 <= status < 500 and code not in _TRANSIENT_CODES):
                if "Daily message quota exceeded" in message or "Maximum sending rate" in message:
                    raise TransientProviderError(f"{reason}: sending quota reached") from None
                raise PermanentProviderError(reason) from None
            raise TransientProviderError(reason) from None
        except BotoCoreError as error:
            raise TransientProviderError(f"SES unreachable: {type(error).__name__}") from None
        except Exception as error:
            raise TransientProviderError(f"SES call failed: {type(error).__name__}") from None
        return str(response.get("MessageId", ""))

    def unverified_domains(self) -> list[str] | None:
        """The SENDER_DOMAINS SES has no verified identity for (ListEmailIdentities), or
        None when that cannot be said (unset, `*`, or SES did not answer)."""
        configured = _domains(self._settings.sender_domains)
        if configured is None:
            return None
        verified: set[str] = set()
        try:
            paginator_token: str | None = None
            while True:
                page = self._client.list_email_identities(
                    **({"NextToken": paginator_token} if paginator_token else {})
                )
                for identity in page.get("EmailIdentities", []):
                    name = str(identity.get("IdentityName", "")).lower()
                    # A domain identity covers the domain; an address only itself.
                    verified.add(name if "@" not in name else name.rpartition("@")[2] + "@")
                paginator_token = page.get("NextToken")
                if not paginator_token:
                    break
        except (BotoCoreError, ClientError):
            return None
        return [
            domain
            for domain in configured
            if domain.removeprefix("*.") not in verified
            and f"{domain.removeprefix('*.')}@" not in verified
        ]

    async def aclose(self) -> None:
        self._executor.shutdown(wait=False, cancel_futures=True)


_TRANSIENT_CODES = frozenset(
    {
        "TooManyRequestsException",
        "Throttling",
        "ThrottlingException",
        "LimitExceededException",
        "ServiceUnavailable",
        "InternalFailure",
        "RequestTimeout",
    }
)
