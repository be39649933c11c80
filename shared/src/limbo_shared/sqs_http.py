"""SQS's JSON protocol on the event loop: aiohttp's keep-alive pool, botocore's signer.

A boto3 call costs about 1.4 ms of CPU in its thread (serialising, endpoint rules,
event hooks, parsing) plus the hop to and from that thread; at a trickle every email
pays for one SendMessageBatch and one ReceiveMessage alone. The same call here costs
about 0.5 ms: SQS's JSON protocol takes and answers exactly the request and response
shapes boto3 does, so only the envelope is built here. What is easy to get wrong stays
with botocore: credentials (the chain, refreshing ones such as IRSA's) and the endpoint
(resolved once, by a boto3 client, at start). SigV4 for this one request shape is
:mod:`limbo_shared.sigv4`, checked against botocore's signer header for header.

Failures come out as :class:`~limbo_shared.aws.AwsError`, like boto3's through
:func:`~limbo_shared.aws.call_aws`: AWS's error code when it answered, botocore's
exception name for the same condition when it did not (``EndpointConnectionError``,
``ConnectTimeoutError``, ``ReadTimeoutError``).
"""

from __future__ import annotations

import asyncio
import base64
import json
import random
import ssl
from collections.abc import Mapping
from typing import Any

import aiohttp
from botocore.credentials import Credentials, ReadOnlyCredentials

from .aws import AwsError, ca_bundle, make_client, new_session
from .config import ConfigError
from .proxies import proxy_for
from .sigv4 import JsonPostSigner

__all__ = ["SqsHttpClient", "sqs_http_client"]

# What botocore's standard retry mode treats as transient, for the calls SQS answers.
_THROTTLED = frozenset(
    {"Throttling", "ThrottlingException", "RequestThrottled", "RequestThrottledException"}
)


class SqsHttpClient:
    """SQS calls by action name (``"SendMessageBatch"``) with boto3's parameter shapes.

    :func:`sqs_http_client` builds one the way :func:`~limbo_shared.aws.make_client`
    builds boto3's. Its aiohttp session opens on the first call, on the running loop,
    and :meth:`aclose` closes it. ``max_attempts`` counts like botocore's: attempts in all,
    later ones only after an error that is transient (no answer, 5xx, throttling).
    """

    def __init__(
        self,
        *,
        endpoint: str,
        region: str,
        credentials: Credentials | None,
        pool: int,
        connect_timeout: float,
        read_timeout: float,
        max_attempts: int,
        ca_bundle: str | None = None,
    ) -> None:
        """``ca_bundle``: the only certificates to trust (boto3's AWS_CA_BUNDLE); without
        it, the system's store (SSL_CERT_FILE) as for any HTTPS client."""
        if max_attempts < 1:
            raise ValueError("max_attempts must be at least 1")
        self._ssl: ssl.SSLContext | bool = True
        if ca_bundle is not None:
            try:
                self._ssl = ssl.create_default_context(cafile=ca_bundle)
            except (OSError, ssl.SSLError) as error:
                raise ConfigError(
                    f"AWS_CA_BUNDLE: cannot read a CA bundle from {ca_bundle} ({error})"
                ) from None
        self.endpoint = endpoint.rstrip("/") + "/"
        self.region = region
        # HTTPS_PROXY and NO_PROXY, as botocore honours them (read here, once: see
        # limbo_shared.proxies for why not aiohttp's trust_env).
        self._proxy = proxy_for(self.endpoint)
        self._signer = JsonPostSigner(self.endpoint, region, "sqs")
        self._credentials = credentials
        self._pool = pool
        # Bounded as a whole, as boto3's connect + read timeouts bound a call: the
        # publisher's IN_FLIGHT_GRACE relies on it, and waiting for a pooled connection
        # counts as connecting (an unbounded wait there could send a message after its
        # client was told 503).
        self._timeout = aiohttp.ClientTimeout(
            total=connect_timeout + read_timeout,
            connect=connect_timeout,
            sock_read=read_timeout,
        )
        self._max_attempts = max_attempts
        self._session: aiohttp.ClientSession | None = None

    async def call(self, action: str, params: Mapping[str, Any]) -> dict[str, Any]:
        """One SQS action; its response as boto3 gives it (binary attribute values as
        bytes), or AwsError."""
        payload = json.dumps(_encode_binary(params), separators=(",", ":")).encode()
        for attempt in range(1, self._max_attempts + 1):
            try:
                return _decode_binary(await self._attempt(action, payload))
            except AwsError as error:
                if attempt == self._max_attempts or not _transient(error):
                    raise
            # botocore's standard mode: full jitter on a base of 2**attempt * 50 ms.
            await asyncio.sleep(random.uniform(0, 0.05 * 2**attempt))
        raise AssertionError("unreachable")  # pragma: no cover

    async def aclose(self) -> None:
        if self._session is not None:
            await self._session.close()
            self._session = None

    async def _attempt(self, action: str, payload: bytes) -> dict[str, Any]:
        headers = await self._signed_headers(action, payload)
        session = self._session_for_loop()
        try:
            async with session.post(
                self.endpoint, data=payload, headers=headers, proxy=self._proxy
            ) as response:
                body = await response.read()
                if response.status == 200:
                    answer: dict[str, Any] = json.loads(body) if body else {}
                    return answer
                raise _answered_error(response.status, response.headers, body)
        except TimeoutError as error:  # aiohttp's own timeouts are TimeoutErrors too
            kind = (
                "ConnectTimeoutError"
                if isinstance(error, aiohttp.ConnectionTimeoutError)
                else "ReadTimeoutError"
            )
            raise AwsError(f"{kind} on {self.endpoint}", kind=kind) from error
        except aiohttp.ClientConnectorError as error:
            raise AwsError(
                f'Could not connect to the endpoint URL: "{self.endpoint}"',
                kind="EndpointConnectionError",
            ) from error
        except (aiohttp.ClientError, json.JSONDecodeError) as error:
            raise AwsError(
                f"{type(error).__name__} on {self.endpoint}: {error}", kind=type(error).__name__
            ) from error

    def _session_for_loop(self) -> aiohttp.ClientSession:
        if self._session is None:
            self._session = aiohttp.ClientSession(
                connector=aiohttp.TCPConnector(limit=self._pool, ttl_dns_cache=300, ssl=self._ssl),
                timeout=self._timeout,
                skip_auto_headers=("User-Agent",),
            )
        return self._session

    async def _signed_headers(self, action: str, payload: bytes) -> dict[str, str]:
        credentials = await self._frozen_credentials()
        return self._signer.headers(credentials, f"AmazonSQS.{action}", payload)

    async def _frozen_credentials(self) -> ReadOnlyCredentials:
        if self._credentials is None:
            raise AwsError(
                "Unable to locate credentials", kind="NoCredentialsError", no_credentials=True
            )
        refresh_needed = getattr(self._credentials, "refresh_needed", None)
        if refresh_needed is not None and refresh_needed():
            # A refresh is a blocking call to STS or the container's credential
            # endpoint: keep it off the event loop.
            return await asyncio.to_thread(self._credentials.get_frozen_credentials)
        return self._credentials.get_frozen_credentials()


def sqs_http_client(
    *,
    region: str,
    endpoint_url: str | None,
    pool: int,
    connect_timeout: float = 2.0,
    read_timeout: float = 5.0,
    max_attempts: int = 2,
) -> SqsHttpClient:
    """An SQS client for the event loop. ``read_timeout`` must exceed a long poll's
    WaitTimeSeconds for receive clients."""
    # boto3 resolves what is easy to get wrong, once: the endpoint (partition, FIPS,
    # AWS_ENDPOINT_URL_SQS) and the credential chain. Its session caches what the
    # chain found, and refreshing credentials refresh in place.
    session = new_session()
    resolver = make_client("sqs", region=region, endpoint_url=endpoint_url, session=session)
    return SqsHttpClient(
        endpoint=resolver.meta.endpoint_url,
        region=resolver.meta.region_name,
        credentials=session.get_credentials(),
        ca_bundle=ca_bundle(session),
        pool=pool,
        connect_timeout=connect_timeout,
        read_timeout=read_timeout,
        max_attempts=max_attempts,
    )


def _answered_error(status: int, headers: Mapping[str, str], body: bytes) -> AwsError:
    try:
        info = json.loads(body) if body else {}
    except json.JSONDecodeError:
        info = {}
    if not isinstance(info, dict):
        info = {}
    # SQS keeps its older (query protocol) codes in this header, and botocore reports
    # those: AWS.SimpleQueueService.NonExistentQueue rather than QueueDoesNotExist.
    query_code = headers.get("x-amzn-query-error", "").split(";", 1)[0]
    code = query_code or str(info.get("__type", "")).rsplit("#", 1)[-1] or f"HTTP{status}"
    message = str(info.get("message") or info.get("Message") or "")
    return AwsError(f"{code}: {message}", kind="ClientError", code=code, status=status)


def _transient(error: AwsError) -> bool:
    if not error.answered:
        return not error.no_credentials
    return error.status >= 500 or error.code in _THROTTLED


def _encode_binary(value: Any) -> Any:
    """The JSON protocol carries a blob as base64 text; boto3's callers give bytes."""
    if isinstance(value, bytes | bytearray):
        return base64.b64encode(value).decode()
    if isinstance(value, Mapping):
        return {key: _encode_binary(item) for key, item in value.items()}
    if isinstance(value, list | tuple):
        return [_encode_binary(item) for item in value]
    return value


def _decode_binary(response: dict[str, Any]) -> dict[str, Any]:
    """Binary message attributes back to bytes, as boto3 answers them."""
    for message in response.get("Messages", ()):
        for attribute in message.get("MessageAttributes", {}).values():
            value = attribute.get("BinaryValue")
            if isinstance(value, str):
                attribute["BinaryValue"] = base64.b64decode(value)
    return response
