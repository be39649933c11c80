"""boto3 clients built one way for every process, and their calls kept off the event loop.

Clients have bounded timeouts and sized pools. :func:`call_aws` runs one call on an
executor and turns botocore's two exception families into one :class:`AwsError`, so
each caller maps a single exception to its own meaning (queue unavailable, store
unavailable, provider refusal).
"""

from __future__ import annotations

import asyncio
import functools
import os
import threading
from collections.abc import Callable
from concurrent.futures import Executor
from typing import TYPE_CHECKING, Any, Generic, Literal, TypedDict, TypeVar, Unpack, overload

import boto3
import botocore.session
from botocore.config import Config
from botocore.exceptions import (
    BotoCoreError,
    ClientError,
    NoCredentialsError,
    PartialCredentialsError,
)
from botocore.loaders import Loader

if TYPE_CHECKING:
    # Dev-only stubs (types-boto3): no service needs them at run time.
    from types_boto3_dynamodb import DynamoDBClient
    from types_boto3_s3 import S3Client
    from types_boto3_sesv2 import SESV2Client
    from types_boto3_sqs import SQSClient

__all__ = [
    "AwsError",
    "ClientOptions",
    "OnFirstUse",
    "as_aws_error",
    "ca_bundle",
    "call_aws",
    "forget_botocore_data",
    "make_client",
    "new_session",
]

T = TypeVar("T")


class AwsError(Exception):
    """An AWS call failed: AWS answered with an error, or could not be reached.

    ``code`` is AWS's error code (``None`` when no answer came back), ``status`` the
    HTTP status (0 without an answer), ``item`` the item a refused conditional write
    returned, ``kind`` botocore's exception class, ``no_credentials`` whether boto3 found
    no credentials to sign with. ``str()`` is ``Code: Message`` or botocore's description.
    """

    def __init__(
        self,
        description: str,
        *,
        kind: str,
        code: str | None = None,
        status: int = 0,
        item: dict[str, Any] | None = None,
        no_credentials: bool = False,
    ) -> None:
        super().__init__(description)
        self.kind = kind
        self.code = code
        self.status = status
        self.item = item
        self.no_credentials = no_credentials

    @property
    def answered(self) -> bool:
        """True when AWS answered (with an error), False when it was not reached."""
        return self.code is not None


async def call_aws(executor: Executor, call: Callable[[], T]) -> T:
    """``call()`` on ``executor``; any botocore failure comes out as AwsError."""
    loop = asyncio.get_running_loop()
    try:
        return await loop.run_in_executor(executor, call)
    except (ClientError, BotoCoreError) as error:
        raise as_aws_error(error) from error


def as_aws_error(error: ClientError | BotoCoreError) -> AwsError:
    """botocore's exception as limbo's one AWS error."""
    if isinstance(error, ClientError):
        info = error.response.get("Error", {})
        code = str(info.get("Code") or "Unknown")
        item = error.response.get("Item")
        return AwsError(
            f"{code}: {info.get('Message', '')}",
            kind=type(error).__name__,
            code=code,
            status=int(error.response.get("ResponseMetadata", {}).get("HTTPStatusCode", 0)),
            item=item if isinstance(item, dict) else None,
        )
    return AwsError(
        str(error),
        kind=type(error).__name__,
        no_credentials=isinstance(error, NoCredentialsError | PartialCredentialsError),
    )


class _ProcessLoader(Loader):
    """botocore's data loader, one per process, read by every session.

    A new session parses botocore's endpoints file and each service's model again: about
    80 of the 100 ms of CPU a client costs, every time. The parsed data is read-only (the
    clients of one session already share it), so the sessions share it too. boto3 adds
    its own data folder to each session's loader: here it is there from the start, and
    the search paths are handed out as a copy, so the additions do not pile up.
    """

    def __init__(self) -> None:
        # What botocore.loaders.create_loader reads, in its order, then boto3's folder.
        extra = os.environ.get("AWS_DATA_PATH", "")
        paths = [os.path.expanduser(path) for path in extra.split(os.pathsep) if path]
        boto3_data = os.path.join(os.path.dirname(boto3.__file__), "data")
        super().__init__(
            extra_search_paths=[
                *paths,
                self.CUSTOMER_DATA_PATH,
                self.BUILTIN_DATA_PATH,
                boto3_data,
            ],
            include_default_search_paths=False,
        )

    @property
    def search_paths(self) -> list[str]:
        return list(super().search_paths)


@functools.cache
def _process_loader() -> _ProcessLoader:
    return _ProcessLoader()


def forget_botocore_data() -> None:
    """Let go of the process's loader: what no live client still holds is freed.

    For a service once it is started: sharing the parsed data pays while a process
    builds clients (tests and tools build hundreds), but a service builds its few at
    start-up, and keeping botocore's endpoint data alive after that cost the API about
    8 MB of peak memory under overload. A session made later gets a new loader.
    """
    _process_loader.cache_clear()


def new_session() -> boto3.session.Session:
    """A boto3 session of its own (sessions are not thread-safe to share; their clients
    are), reading botocore's data through the process's one loader."""
    core = botocore.session.Session()
    core.register_component("data_loader", _process_loader())
    return boto3.session.Session(botocore_session=core)


def ca_bundle(session: boto3.session.Session) -> str | None:
    """The CA bundle boto3's clients of ``session`` verify AWS's certificates with, when
    one is configured (AWS_CA_BUNDLE, or ca_bundle in the AWS config file)."""
    path = session._session.get_config_variable("ca_bundle")
    return str(path) if path else None


class ClientOptions(TypedDict, total=False):
    read_timeout: float
    connect_timeout: float
    max_attempts: int
    max_pool_connections: int
    session: boto3.session.Session


@overload
def make_client(
    service: Literal["sqs"],
    *,
    region: str,
    endpoint_url: str | None,
    **options: Unpack[ClientOptions],
) -> SQSClient: ...
@overload
def make_client(
    service: Literal["sesv2"],
    *,
    region: str,
    endpoint_url: str | None,
    **options: Unpack[ClientOptions],
) -> SESV2Client: ...
@overload
def make_client(
    service: Literal["dynamodb"],
    *,
    region: str,
    endpoint_url: str | None,
    **options: Unpack[ClientOptions],
) -> DynamoDBClient: ...
@overload
def make_client(
    service: Literal["s3"],
    *,
    region: str,
    endpoint_url: str | None,
    **options: Unpack[ClientOptions],
) -> S3Client: ...
def make_client(
    service: Literal["sqs", "sesv2", "dynamodb", "s3"],
    *,
    region: str,
    endpoint_url: str | None,
    read_timeout: float = 5.0,
    connect_timeout: float = 2.0,
    max_attempts: int = 2,
    max_pool_connections: int = 20,
    session: boto3.session.Session | None = None,
) -> SQSClient | SESV2Client | DynamoDBClient | S3Client:
    """A client whose calls fail within a bounded time instead of hanging.

    ``read_timeout`` must exceed an SQS long poll's WaitTimeSeconds for receive clients.
    """
    config = Config(
        region_name=region,
        connect_timeout=connect_timeout,
        read_timeout=read_timeout,
        retries={"mode": "standard", "max_attempts": max_attempts},
        max_pool_connections=max_pool_connections,
    )
    # A session per client: boto3's default session is not thread-safe to share.
    session = session or new_session()
    return session.client(service, endpoint_url=endpoint_url, config=config)


C = TypeVar("C")


class OnFirstUse(Generic[C]):
    """A client built the first time it is needed, once, from any thread.

    For a client a process may never call: S3 holds only the rare message too large for
    SQS, and boto3's S3 client costs about 10 MB of resident memory from the moment it
    is built. ``get()`` is meant for the thread a blocking call runs on anyway, never the
    event loop: building takes a noticeable fraction of a second.
    """

    def __init__(self, build: Callable[[], C]) -> None:
        self._build = build
        self._client: C | None = None
        self._lock = threading.Lock()

    @property
    def built(self) -> bool:
        return self._client is not None

    def get(self) -> C:
        if self._client is None:
            with self._lock:
                if self._client is None:
                    self._client = self._build()
        return self._client
