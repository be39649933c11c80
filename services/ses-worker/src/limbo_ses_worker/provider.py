"""AWS SES v2 ``SendEmail`` with Simple content (attachments included)."""

from __future__ import annotations

import functools
import re
from concurrent.futures import ThreadPoolExecutor
from typing import TYPE_CHECKING
from urllib.parse import urlsplit

from botocore.exceptions import BotoCoreError, ClientError
from pydantic import Field, field_validator

from limbo_shared.addresses import InvalidMailbox, parse_mailbox
from limbo_shared.attachments import PROVIDER_CAPS, Attachment, encoded_size
from limbo_shared.aws import AwsError, call_aws, make_client
from limbo_shared.config import LoggingSettings
from limbo_shared.provider import (
    PermanentProviderError,
    ProviderUnavailable,
    TransientProviderError,
)
from limbo_shared.schema import LIMBO_ID_TAG, QueuedMail

if TYPE_CHECKING:
    from types_boto3_sesv2.type_defs import (
        AttachmentTypeDef,
        BodyTypeDef,
        DestinationTypeDef,
        MessageHeaderTypeDef,
        MessageTagTypeDef,
        MessageTypeDef,
        SendEmailRequestTypeDef,
    )

__all__ = ["SesProvider", "SesSettings", "send_email_request", "ses_address", "ses_attachments"]

# Refusals of this message that no retry will fix.
_PERMANENT = frozenset(
    {
        "MessageRejected",
        "BadRequestException",
        "InvalidParameterValue",
        "ValidationException",
    }
)
# Refusals of the account, whatever the message: pause until an operator fixes it.
_ACCOUNT = frozenset(
    {
        "SendingPausedException",
        "AccountSuspendedException",
        "MailFromDomainNotVerifiedException",
        "NotFoundException",  # a configuration set that does not exist (any more)
        "AccessDenied",
        "AccessDeniedException",
        "UnrecognizedClientException",
        "InvalidClientTokenId",
        "ExpiredToken",
        "ExpiredTokenException",
        "TokenRefreshRequired",
        "InvalidSignatureException",
        "SignatureDoesNotMatch",
        "IncompleteSignature",
        "MissingAuthenticationToken",
        "RequestExpired",  # the clock is off
        "AuthFailure",
        "OptInRequired",
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
    # Share of the account's MaxSendRate the deployment uses: SES throttles at the rate
    # itself, and 14/s configured on a 14/s account was still throttled (AWS's advice too).
    ses_rate_headroom: float = Field(default=0.8, gt=0, le=1)
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


def send_email_request(
    mail: QueuedMail, configuration_set: str | None = None
) -> SendEmailRequestTypeDef:
    """The SendEmail arguments for one message: From is the client's, as the API allowed it."""
    request = mail.mail
    body: BodyTypeDef = {"Text": {"Data": request.message, "Charset": "UTF-8"}}
    if request.html is not None:
        body["Html"] = {"Data": request.html, "Charset": "UTF-8"}
    simple: MessageTypeDef = {
        "Subject": {"Data": request.subject, "Charset": "UTF-8"},
        "Body": body,
    }
    # The schema leaves room for this one (at most 14 of the client's, SES takes 15).
    headers: list[MessageHeaderTypeDef] = [
        {"Name": n, "Value": v} for n, v in request.headers.items()
    ]
    headers.append({"Name": "X-Limbo-Message-Id", "Value": mail.id})
    simple["Headers"] = headers
    if request.attachments:
        simple["Attachments"] = ses_attachments(request.attachments)
    destination: DestinationTypeDef = {"ToAddresses": [ses_address(a) for a in request.to]}
    if request.cc:
        destination["CcAddresses"] = [ses_address(a) for a in request.cc]
    if request.bcc:
        destination["BccAddresses"] = [ses_address(a) for a in request.bcc]
    arguments: SendEmailRequestTypeDef = {
        "FromEmailAddress": ses_address(request.from_),
        "Destination": destination,
        "Content": {"Simple": simple},
    }
    if request.reply_to:
        arguments["ReplyToAddresses"] = [ses_address(a) for a in request.reply_to]
    # The schema reserves this name: SES events carry it back to limbo's id.
    tags: list[MessageTagTypeDef] = [{"Name": n, "Value": v} for n, v in request.tags.items()]
    tags.append({"Name": LIMBO_ID_TAG, "Value": mail.id})
    arguments["EmailTags"] = tags
    if configuration_set:
        arguments["ConfigurationSetName"] = configuration_set
    return arguments


def ses_attachments(attachments: list[Attachment]) -> list[AttachmentTypeDef]:
    """SESv2 Simple content's Attachments: SES builds the MIME itself (inline by Content-ID)."""
    if encoded_size(attachments) > PROVIDER_CAPS["ses"]:
        raise PermanentProviderError(
            f"attachments exceed SES's {PROVIDER_CAPS['ses']} bytes per message (base64)"
        )
    result = []
    for attachment in attachments:
        entry: AttachmentTypeDef = {
            "FileName": attachment.filename,
            "ContentType": attachment.content_type,
            "RawContent": attachment.data(),
            "ContentTransferEncoding": "BASE64",
            "ContentDisposition": "INLINE" if attachment.content_id else "ATTACHMENT",
        }
        if attachment.content_id:
            entry["ContentId"] = attachment.content_id
        result.append(entry)
    return result


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
        try:
            response = await call_aws(
                self._executor, functools.partial(self._client.send_email, **arguments)
            )
        except AwsError as error:
            raise _classify(error) from None
        except Exception as error:
            # Only the class: an exception's text can repeat request parts.
            raise TransientProviderError(f"SES call failed: {type(error).__name__}") from None
        return str(response.get("MessageId", ""))

    async def probe(self) -> None:
        """``GetAccount`` (is sending enabled?), and the configuration set if one is set."""
        try:
            account = await call_aws(self._executor, self._client.get_account)
            if not account.get("SendingEnabled", True):
                raise ProviderUnavailable("SES: sending is disabled for the account")
            name = self._settings.ses_configuration_set
            if name:
                await call_aws(
                    self._executor,
                    functools.partial(
                        self._client.get_configuration_set, ConfigurationSetName=name
                    ),
                )
        except AwsError as error:
            raise _classify(error) from None

    def unverified_domains(self) -> list[str] | None:
        """The SENDER_DOMAINS SES has no verified identity for (ListEmailIdentities), or
        None when that cannot be said (unset, `*`, or SES did not answer)."""
        configured = _domains(self._settings.sender_domains)
        if configured is None:
            return None
        verified: set[str] = set()
        try:
            token = ""
            while True:
                page = (
                    self._client.list_email_identities(NextToken=token)
                    if token
                    else self._client.list_email_identities()
                )
                for identity in page.get("EmailIdentities", []):
                    name = str(identity.get("IdentityName", "")).lower()
                    # A domain identity covers the domain; an address identity is noted
                    # as `domain@` (the domain has at least that one sender).
                    verified.add(name if "@" not in name else name.rpartition("@")[2] + "@")
                token = page.get("NextToken", "")
                if not token:
                    break
        except (BotoCoreError, ClientError):
            return None
        return [
            domain
            for domain in configured
            if domain.removeprefix("*.") not in verified
            and f"{domain.removeprefix('*.')}@" not in verified
        ]

    async def max_send_rate(self) -> float | None:
        """``GetAccount``'s ``SendQuota.MaxSendRate`` times ``SES_RATE_HEADROOM``."""
        account = await call_aws(self._executor, self._client.get_account)
        rate = float(account.get("SendQuota", {}).get("MaxSendRate", 1.0))
        return max(0.1, rate * self._settings.ses_rate_headroom)

    async def aclose(self) -> None:
        self._executor.shutdown(wait=False, cancel_futures=True)


def _classify(error: AwsError) -> Exception:
    """SES's refusal as limbo's error: about the account, this message, or this moment."""
    if error.no_credentials:
        return ProviderUnavailable("SES: no AWS credentials")
    if error.code is None:
        # botocore's description can carry the endpoint; its class says enough.
        return TransientProviderError(f"SES unreachable: {error.kind}")
    status = error.status
    # Only the error code (an identifier, checked) and the status: AWS's message text and
    # botocore's exception text can repeat request parts.
    code = error.code if _ERROR_CODE.match(error.code) else "Unknown"
    reason = f"SES {code} (HTTP {status})"
    message = str(error)
    if code in _ACCOUNT or code.startswith("AccessDenied"):
        # The code names what to fix.
        return ProviderUnavailable(reason)
    if code in _PERMANENT or (400 <= status < 500 and code not in _TRANSIENT_CODES):
        if "Daily message quota exceeded" in message:
            return TransientProviderError(f"{reason}: sending quota reached")
        if "Maximum sending rate" in message:
            return TransientProviderError(f"{reason}: sending rate reached", throttled=True)
        return PermanentProviderError(reason)
    throttled = code in _THROTTLING_CODES and "Daily message quota" not in message
    return TransientProviderError(reason, throttled=throttled)


# SES's "too fast" answers (HTTP 429 "Maximum sending rate exceeded" among them).
_THROTTLING_CODES = frozenset({"TooManyRequestsException", "Throttling", "ThrottlingException"})


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
