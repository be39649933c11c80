"""AWS SES v2 ``SendEmail`` with Simple content."""

from __future__ import annotations

import asyncio
import functools
from concurrent.futures import ThreadPoolExecutor
from email.utils import formataddr
from typing import TYPE_CHECKING
from urllib.parse import urlsplit

from botocore.exceptions import (
    BotoCoreError,
    ClientError,
    NoCredentialsError,
    PartialCredentialsError,
)
from email_validator import EmailNotValidError, validate_email
from pydantic import Field

from limbo_shared.aws import make_client
from limbo_shared.config import LoggingSettings
from limbo_shared.provider import (
    PermanentProviderError,
    ProviderUnavailable,
    TransientProviderError,
)
from limbo_shared.schema import QueuedMail

if TYPE_CHECKING:
    from types_boto3_sesv2.type_defs import (
        BodyTypeDef,
        DestinationTypeDef,
        MessageHeaderTypeDef,
        MessageTypeDef,
        SendEmailRequestTypeDef,
    )

__all__ = ["SesProvider", "SesSettings", "send_email_request", "ses_address"]

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


class SesSettings(LoggingSettings):
    sessource: str = Field(min_length=3, description="verified SES sender identity")
    region: str = Field(min_length=1)
    aws_endpoint_url: str | None = None
    ses_configuration_set: str | None = Field(
        default=None, description="configuration set for SES event publishing"
    )


def ses_address(value: str) -> str:
    """An address as SES takes it: 7-bit ASCII (SES has no SMTPUTF8).

    The domain becomes Punycode and a non-ASCII display name a MIME encoded-word, as
    SES's Destination documentation asks; a non-ASCII local part cannot be sent
    through SES at all, which is a permanent rejection, not something to retry.
    """
    value = value.strip()
    if value.isascii():
        return value
    # The same split as the schema's validation: `addr` or `Name <addr>`.
    name, address = "", value
    if value.endswith(">") and "<" in value:
        name, _, address = value[:-1].rpartition("<")
        name = name.strip()
        if len(name) >= 2 and name[0] == name[-1] == '"':
            name = name[1:-1].replace('\\"', '"').replace("\\\\", "\\")
    local, _, domain = address.rpartition("@")
    if not local.isascii():
        raise PermanentProviderError(
            f"SES cannot send to or from {address!r}: a non-ASCII local part needs "
            "SMTPUTF8, which SES does not support"
        )
    if not domain.isascii():
        try:
            domain = validate_email(
                address, check_deliverability=False, allow_smtputf8=False
            ).ascii_domain
        except EmailNotValidError as error:
            raise PermanentProviderError(f"SES cannot take {address!r}: {error}") from None
    return formataddr((name, f"{local}@{domain}"), charset="utf-8")


def send_email_request(
    mail: QueuedMail, source: str, configuration_set: str | None = None
) -> SendEmailRequestTypeDef:
    """The SendEmail arguments for one message."""
    request = mail.mail
    body: BodyTypeDef = {"Text": {"Data": request.message, "Charset": "UTF-8"}}
    if request.html is not None:
        body["Html"] = {"Data": request.html, "Charset": "UTF-8"}
    simple: MessageTypeDef = {
        "Subject": {"Data": request.subject, "Charset": "UTF-8"},
        "Body": body,
    }
    headers: list[MessageHeaderTypeDef] = [
        {"Name": n, "Value": v} for n, v in request.headers.items()
    ]
    headers.append({"Name": "X-Limbo-Message-Id", "Value": mail.id})
    simple["Headers"] = headers[:15]
    destination: DestinationTypeDef = {"ToAddresses": [ses_address(a) for a in request.to]}
    if request.cc:
        destination["CcAddresses"] = [ses_address(a) for a in request.cc]
    if request.bcc:
        destination["BccAddresses"] = [ses_address(a) for a in request.bcc]
    # SESSOURCE is the verified identity; the client's `from` becomes the display when
    # it is that identity, otherwise a Reply-To so answers still reach the client.
    arguments: SendEmailRequestTypeDef = {
        "FromEmailAddress": source,
        "Destination": destination,
        "Content": {"Simple": simple},
    }
    reply_to = list(request.reply_to)
    if not _same_address(request.from_, source) and not reply_to:
        reply_to = [request.from_]
    elif _same_address(request.from_, source):
        arguments["FromEmailAddress"] = ses_address(request.from_)
    if reply_to:
        arguments["ReplyToAddresses"] = [ses_address(a) for a in reply_to]
    if request.tags:
        arguments["EmailTags"] = [{"Name": n, "Value": v} for n, v in request.tags.items()]
    if configuration_set:
        arguments["ConfigurationSetName"] = configuration_set
    return arguments


def _bare(address: str) -> str:
    address = address.strip()
    if address.endswith(">") and "<" in address:
        address = address[:-1].rpartition("<")[2]
    return address.lower()


def _same_address(a: str, b: str) -> bool:
    return _bare(a) == _bare(b)


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
        arguments = send_email_request(
            mail, self._settings.sessource, self._settings.ses_configuration_set
        )
        loop = asyncio.get_running_loop()
        try:
            response = await loop.run_in_executor(
                self._executor, functools.partial(self._client.send_email, **arguments)
            )
        except ClientError as error:
            raise _classify(error) from None
        except (NoCredentialsError, PartialCredentialsError):
            raise ProviderUnavailable("SES: no AWS credentials") from None
        except BotoCoreError as error:
            raise TransientProviderError(f"SES unreachable: {type(error).__name__}") from None
        return str(response.get("MessageId", ""))

    async def probe(self) -> None:
        """``GetAccount`` (is sending enabled?), and the configuration set if one is set."""
        loop = asyncio.get_running_loop()
        try:
            account = await loop.run_in_executor(self._executor, self._client.get_account)
            if not account.get("SendingEnabled", True):
                raise ProviderUnavailable("SES: sending is disabled for the account")
            name = self._settings.ses_configuration_set
            if name:
                await loop.run_in_executor(
                    self._executor,
                    functools.partial(
                        self._client.get_configuration_set, ConfigurationSetName=name
                    ),
                )
        except ClientError as error:
            raise _classify(error) from None
        except (NoCredentialsError, PartialCredentialsError):
            raise ProviderUnavailable("SES: no AWS credentials") from None
        except BotoCoreError as error:
            raise TransientProviderError(f"SES unreachable: {type(error).__name__}") from None

    async def aclose(self) -> None:
        self._executor.shutdown(wait=False, cancel_futures=True)


def _classify(error: ClientError) -> Exception:
    """SES's refusal as limbo's error: about the account, this message, or this moment."""
    info = error.response.get("Error", {})
    code = str(info.get("Code", "Unknown"))
    reason = f"SES {code}: {info.get('Message', '')}"[:300]
    status = int(error.response.get("ResponseMetadata", {}).get("HTTPStatusCode", 0))
    if code in _ACCOUNT or code.startswith("AccessDenied"):
        # SES's own words about the account: the code names what to fix.
        return ProviderUnavailable(reason)
    if code in _PERMANENT or (400 <= status < 500 and code not in _TRANSIENT_CODES):
        if "Daily message quota exceeded" in reason or "Maximum sending rate" in reason:
            return TransientProviderError(reason)
        return PermanentProviderError(reason)
    return TransientProviderError(reason)


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
