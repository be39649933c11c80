"""The event-loop SQS client, against the emulator over HTTP: the same calls and answers
as boto3's, and every failure a bounded AwsError (a QueueUnavailable through SqsQueue)."""

from __future__ import annotations

import asyncio
import datetime
import ipaddress
import ssl
import time
from collections.abc import AsyncIterator, Mapping
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path
from typing import Any

import httpx
import pytest
from cryptography import x509
from cryptography.hazmat.primitives import hashes, serialization
from cryptography.hazmat.primitives.asymmetric import ec
from cryptography.x509.oid import NameOID

from limbo_devtools.local_aws import LocalAws
from limbo_shared.aws import AwsError, new_session
from limbo_shared.config import ConfigError
from limbo_shared.queue import EntryFailed, OutgoingMessage, QueueUnavailable, SqsQueue
from limbo_shared.sqs_http import SqsHttpClient, sqs_http_client

from ..holding_proxy import HoldingProxy

# Nothing listens on port 9 of localhost: the connection is refused at once.
UNREACHABLE = "http://127.0.0.1:9"

ATTRIBUTES: dict[str, dict[str, Any]] = {
    "traceparent": {
        "DataType": "String",
        "StringValue": "00-0af7651916cd43dd8448eb211c80319c-b7ad6b7169203331-01",
    },
    "raw": {"DataType": "Binary", "BinaryValue": b"\x00\xffbinary"},
}


def client_for(endpoint: str, **options: float) -> SqsHttpClient:
    return sqs_http_client(
        region="us-east-1",
        endpoint_url=endpoint,
        pool=4,
        connect_timeout=options.get("connect_timeout", 2.0),
        read_timeout=options.get("read_timeout", 10.0),
        max_attempts=int(options.get("max_attempts", 1)),
    )


@pytest.fixture
async def http(aws: LocalAws) -> AsyncIterator[SqsHttpClient]:
    client = client_for(aws.endpoint)
    yield client
    await client.aclose()


def message(number: int, **attributes: Mapping[str, Any]) -> OutgoingMessage:
    return OutgoingMessage(
        body=f'{{"n": {number}}}',
        group_id=f"g{number}",
        deduplication_id=f"d{number}",
        attributes=attributes,
    )


async def test_sent_messages_come_back_with_their_attributes_and_leave_when_deleted(
    aws: LocalAws, http: SqsHttpClient
) -> None:
    queue = SqsQueue(http, aws.queue_url)
    ids = await queue.send_batch([message(1, **ATTRIBUTES), message(2)])
    assert all(isinstance(sqs_id, str) and sqs_id for sqs_id in ids)

    received = await queue.receive(max_messages=10, wait_seconds=1)
    by_body = {m.body: m for m in received}
    assert set(by_body) == {'{"n": 1}', '{"n": 2}'}
    first = by_body['{"n": 1}']
    assert first.message_id == ids[0]
    assert first.group_id == "g1" and first.receive_count == 1
    assert first.sent_timestamp is not None and abs(first.sent_timestamp - time.time()) < 60
    # Binary values come back as bytes, as boto3 gives them.
    assert first.message_attributes["raw"]["BinaryValue"] == b"\x00\xffbinary"
    assert (
        first.message_attributes["traceparent"]["StringValue"]
        == (ATTRIBUTES["traceparent"]["StringValue"])
    )

    outcomes = await queue.delete_batch([m.receipt_handle for m in received])
    assert outcomes == [None, None]
    assert await queue.receive(max_messages=10, wait_seconds=0) == []


async def test_what_one_client_sends_the_other_reads_the_same(
    aws: LocalAws, http: SqsHttpClient
) -> None:
    boto = SqsQueue(
        new_session().client("sqs", endpoint_url=aws.endpoint, region_name="us-east-1"),
        aws.queue_url,
        ThreadPoolExecutor(1),
    )
    await boto.send(message(3, **ATTRIBUTES))
    (via_http,) = await SqsQueue(http, aws.queue_url).receive(max_messages=1, wait_seconds=1)
    await SqsQueue(http, aws.queue_url).change_visibility_batch([(via_http.receipt_handle, 0)])
    (via_boto,) = await boto.receive(max_messages=1, wait_seconds=1)
    assert via_http.message_id == via_boto.message_id
    assert via_http.body == via_boto.body
    assert via_http.message_attributes == via_boto.message_attributes
    assert via_boto.receive_count == 2  # made visible again at once, and received again


async def test_an_entry_sqs_refuses_fails_alone(aws: LocalAws, http: SqsHttpClient) -> None:
    queue = SqsQueue(http, aws.queue_url)
    await queue.send_batch([message(4)])
    (received,) = await queue.receive(max_messages=1, wait_seconds=1)
    outcomes = await queue.delete_batch([received.receipt_handle, "not-a-receipt-handle"])
    assert outcomes[0] is None
    assert isinstance(outcomes[1], EntryFailed)


async def test_a_queue_that_does_not_exist_is_an_answered_error_naming_the_call(
    aws: LocalAws, http: SqsHttpClient
) -> None:
    missing = aws.queue_url.rsplit("/", 1)[0] + "/nothing-here.fifo"
    with pytest.raises(QueueUnavailable) as caught:
        await SqsQueue(http, missing).send_batch([message(5)])
    assert str(caught.value).startswith("SQS send_message_batch failed: ")
    cause = caught.value.__cause__
    assert isinstance(cause, AwsError) and cause.answered
    assert cause.status == 400
    # The code boto3 reports for it (SQS's query-protocol code), not the JSON one.
    assert cause.code == "AWS.SimpleQueueService.NonExistentQueue"


async def test_an_unreachable_endpoint_fails_at_once_without_a_code() -> None:
    client = client_for(UNREACHABLE, max_attempts=2)
    try:
        started = time.monotonic()
        with pytest.raises(AwsError) as caught:
            await client.call("GetQueueAttributes", {"QueueUrl": f"{UNREACHABLE}/1/q"})
        assert time.monotonic() - started < 5
    finally:
        await client.aclose()
    assert not caught.value.answered
    assert caught.value.kind == "EndpointConnectionError"
    assert "127.0.0.1:9" in str(caught.value)


@pytest.mark.parametrize("attempts", [1, 2])
async def test_a_call_that_gets_no_answer_times_out_and_is_tried_max_attempts_times(
    aws: LocalAws, holding_proxy: HoldingProxy, attempts: int
) -> None:
    holding_proxy.hold("AmazonSQS.SendMessageBatch")
    client = client_for(holding_proxy.url, read_timeout=0.5, max_attempts=attempts)
    try:
        started = time.monotonic()
        with pytest.raises(AwsError) as caught:
            await client.call(
                "SendMessageBatch",
                {"QueueUrl": aws.queue_url, "Entries": [{"Id": "0", "MessageBody": "x"}]},
            )
        elapsed = time.monotonic() - started
    finally:
        holding_proxy.release("AmazonSQS.SendMessageBatch")
        await client.aclose()
    assert caught.value.kind == "ReadTimeoutError" and not caught.value.answered
    assert elapsed < attempts * 0.5 + 5
    assert holding_proxy.seen("AmazonSQS.SendMessageBatch") == attempts


async def test_without_credentials_nothing_is_sent_and_the_error_says_so(aws: LocalAws) -> None:
    client = SqsHttpClient(
        endpoint=aws.endpoint,
        region="us-east-1",
        credentials=None,
        pool=1,
        connect_timeout=1,
        read_timeout=1,
        max_attempts=3,
    )
    with pytest.raises(AwsError) as caught:
        await client.call("GetQueueAttributes", {"QueueUrl": aws.queue_url})
    assert caught.value.no_credentials


async def test_calls_run_concurrently_on_the_loop(aws: LocalAws, http: SqsHttpClient) -> None:
    # Two long polls and a send at once: the send is not queued behind the polls.
    queue = SqsQueue(http, aws.queue_url)
    polls = [asyncio.create_task(queue.receive(max_messages=1, wait_seconds=2)) for _ in range(2)]
    await asyncio.sleep(0.2)
    started = time.monotonic()
    await queue.send_batch([message(6)])
    assert time.monotonic() - started < 1.5
    received = [m for batch in await asyncio.gather(*polls) for m in batch]
    assert [m.body for m in received] == ['{"n": 6}']


async def test_waiting_for_a_pooled_connection_counts_as_connecting(
    aws: LocalAws, holding_proxy: HoldingProxy
) -> None:
    # A call that could not get a connection in time is never sent: the API answers 503
    # for it, so it must not reach SQS later.
    holding_proxy.hold("AmazonSQS.GetQueueAttributes")
    client = sqs_http_client(
        region="us-east-1",
        endpoint_url=holding_proxy.url,
        pool=1,
        connect_timeout=0.5,
        read_timeout=10.0,
        max_attempts=1,
    )
    held = asyncio.create_task(client.call("GetQueueAttributes", {"QueueUrl": aws.queue_url}))
    try:
        while holding_proxy.waiting("AmazonSQS.GetQueueAttributes") < 1:
            await asyncio.sleep(0.02)
        started = time.monotonic()
        with pytest.raises(AwsError) as caught:
            await client.call("ListQueues", {})
        assert time.monotonic() - started < 5
        assert caught.value.kind == "ConnectTimeoutError"
        assert holding_proxy.seen("AmazonSQS.ListQueues") == 0
    finally:
        holding_proxy.release("AmazonSQS.GetQueueAttributes")
        await held
        await client.aclose()


def _self_signed(directory: Path) -> tuple[Path, Path]:
    """A certificate for 127.0.0.1 that signs itself, as a private CA's would: trusted
    only where it is named."""
    key = ec.generate_private_key(ec.SECP256R1())
    name = x509.Name([x509.NameAttribute(NameOID.COMMON_NAME, "limbo test CA")])
    now = datetime.datetime.now(datetime.UTC)
    certificate = (
        x509.CertificateBuilder()
        .subject_name(name)
        .issuer_name(name)
        .public_key(key.public_key())
        .serial_number(x509.random_serial_number())
        .not_valid_before(now - datetime.timedelta(minutes=5))
        .not_valid_after(now + datetime.timedelta(hours=1))
        .add_extension(x509.BasicConstraints(ca=True, path_length=None), critical=True)
        .add_extension(
            x509.SubjectAlternativeName([x509.IPAddress(ipaddress.ip_address("127.0.0.1"))]),
            critical=False,
        )
        .sign(key, hashes.SHA256())
    )
    cert_path, key_path = directory / "ca.pem", directory / "key.pem"
    cert_path.write_bytes(certificate.public_bytes(serialization.Encoding.PEM))
    key_path.write_bytes(
        key.private_bytes(
            serialization.Encoding.PEM,
            serialization.PrivateFormat.PKCS8,
            serialization.NoEncryption(),
        )
    )
    return cert_path, key_path


@pytest.fixture
async def tls_endpoint(aws: LocalAws, tmp_path: Path) -> AsyncIterator[tuple[str, Path]]:
    """The emulator behind TLS (a real handshake on a real socket) with a certificate
    of a private CA; answers the endpoint and the CA's file."""
    cert_path, key_path = _self_signed(tmp_path)
    context = ssl.create_default_context(ssl.Purpose.CLIENT_AUTH)
    context.load_cert_chain(cert_path, key_path)
    upstream = httpx.URL(aws.endpoint)

    async def pipe(reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
        try:
            while chunk := await reader.read(65536):
                writer.write(chunk)
                await writer.drain()
        finally:
            writer.close()

    async def forward(reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
        up_reader, up_writer = await asyncio.open_connection(upstream.host, upstream.port)
        await asyncio.gather(
            pipe(reader, up_writer), pipe(up_reader, writer), return_exceptions=True
        )

    server = await asyncio.start_server(forward, "127.0.0.1", 0, ssl=context)
    port = server.sockets[0].getsockname()[1]
    yield f"https://127.0.0.1:{port}", cert_path
    server.close()


async def test_aws_ca_bundle_is_the_trust_boto3_would_use(
    aws: LocalAws, tls_endpoint: tuple[str, Path], monkeypatch: pytest.MonkeyPatch
) -> None:
    endpoint, ca = tls_endpoint
    # Not in the system's store: refused, as boto3 refuses it.
    untrusting = client_for(endpoint)
    with pytest.raises(AwsError, match="Could not connect"):
        await untrusting.call("GetQueueAttributes", {"QueueUrl": aws.queue_url})
    await untrusting.aclose()

    monkeypatch.setenv("AWS_CA_BUNDLE", str(ca))
    trusting = client_for(endpoint)
    try:
        answer = await trusting.call(
            "GetQueueAttributes", {"QueueUrl": aws.queue_url, "AttributeNames": ["FifoQueue"]}
        )
    finally:
        await trusting.aclose()
    assert answer["Attributes"]["FifoQueue"] == "true"


def test_an_unreadable_aws_ca_bundle_is_a_configuration_error_naming_it(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setenv("AWS_CA_BUNDLE", str(tmp_path / "missing.pem"))
    with pytest.raises(ConfigError, match="AWS_CA_BUNDLE"):
        client_for(UNREACHABLE)


@pytest.mark.parametrize("bypass", [False, True])
async def test_http_proxy_and_no_proxy_are_honoured_as_boto3_honours_them(
    aws: LocalAws, monkeypatch: pytest.MonkeyPatch, bypass: bool
) -> None:
    proxy = HoldingProxy(aws.endpoint)  # forwards what it is asked for: a real proxy
    monkeypatch.setenv("HTTP_PROXY", proxy.url)  # the emulator's endpoint is http://
    monkeypatch.delenv("http_proxy", raising=False)
    monkeypatch.delenv("no_proxy", raising=False)
    if bypass:
        monkeypatch.setenv("NO_PROXY", "127.0.0.1")
    else:
        monkeypatch.delenv("NO_PROXY", raising=False)
    client = client_for(aws.endpoint)
    try:
        answer = await client.call(
            "GetQueueAttributes", {"QueueUrl": aws.queue_url, "AttributeNames": ["FifoQueue"]}
        )
    finally:
        await client.aclose()
        proxy.close()
    assert answer["Attributes"]["FifoQueue"] == "true"
    assert proxy.seen("AmazonSQS.GetQueueAttributes") == (0 if bypass else 1)
