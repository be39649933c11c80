"""The S3 pointer format is the SQS Extended Client's, so other tools can read it."""

from __future__ import annotations

import json

from limbo_shared.payload import SIZE_ATTRIBUTE, PayloadPointer, read_pointer

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
