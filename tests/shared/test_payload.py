"""The S3 pointer format is the SQS Extended Client's, so other tools can read it; the S3
client is built only when a message needs it."""

from __future__ import annotations

import json
from concurrent.futures import ThreadPoolExecutor

from limbo_devtools.local_aws import LocalAws
from limbo_shared.aws import OnFirstUse, make_client
from limbo_shared.payload import SIZE_ATTRIBUTE, PayloadPointer, PayloadStore, read_pointer

SIZE = {SIZE_ATTRIBUTE: {"DataType": "Number", "StringValue": "2000000"}}


def test_the_pointer_is_the_extended_clients_json() -> None:
    body = PayloadPointer("bucket", "key-1").body()
    assert json.loads(body) == [
        "software.amazon.payloadoffloading.PayloadS3Pointer",
        {"s3BucketName": "bucket", "s3Key": "key-1"},
    ]
    assert read_pointer(body, SIZE) == PayloadPointer("bucket", "key-1")


def test_an_inline_body_is_no_pointer() -> None:
    pointer = PayloadPointer("bucket", "key-1").body()
    assert read_pointer('{"v": 1}', SIZE) is None
    # Without the size attribute a pointer-shaped body is the message itself.
    assert read_pointer(pointer, {}) is None
    assert read_pointer('["other.Class", {"s3BucketName": "b", "s3Key": "k"}]', SIZE) is None
    assert read_pointer("[1, 2, 3]", SIZE) is None


async def test_s3_is_built_by_the_first_large_message_not_before(aws: LocalAws) -> None:
    assert aws.payload_bucket
    s3 = OnFirstUse(lambda: make_client("s3", region=aws.region, endpoint_url=aws.endpoint))
    store = PayloadStore(s3, ThreadPoolExecutor(2), aws.payload_bucket)
    # Small mail never needs S3: the client (about 10 MB) is not built for it.
    assert await store.resolve('{"v": 1}', {}) == '{"v": 1}'
    assert not s3.built
    body, attributes = await store.offload("key-1", '{"large": true}')
    assert s3.built
    assert await store.resolve(body, attributes) == '{"large": true}'
