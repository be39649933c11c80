"""limbo's SigV4 signer gives exactly botocore's headers for the same request and instant.

botocore's ``SigV4Auth`` is the reference: each case signs the same POST both ways at
one frozen instant and compares every header, the signature included.
"""

from __future__ import annotations

import datetime

import botocore.auth
import pytest
from botocore.awsrequest import AWSRequest
from botocore.credentials import ReadOnlyCredentials
from hypothesis import given
from hypothesis import strategies as st

from limbo_shared.sigv4 import JSON_CONTENT_TYPE, JsonPostSigner

ENDPOINTS = [
    "http://127.0.0.1:4566",
    "http://127.0.0.1:4566/",
    "https://sqs.eu-west-1.amazonaws.com/",
    "https://sqs.eu-west-1.amazonaws.com:443/",
    "http://localstack:80/",
    "https://SQS.Example.internal:8443/prefix/path",
    "http://[::1]:4566/",
]
PLAIN = ReadOnlyCredentials("AKIDEXAMPLE", "wJalrXUtnFEMI/K7MDENG+bPxRfiCYEXAMPLEKEY", None)
SESSION = ReadOnlyCredentials("ASIAEXAMPLE", "secret/with+chars", "FwoGZXIvYXdzE//token==")
INSTANT = datetime.datetime(2026, 12, 2, 23, 59, 59, tzinfo=datetime.UTC)


def botocore_headers(
    endpoint: str,
    credentials: ReadOnlyCredentials,
    target: str,
    payload: bytes,
    now: datetime.datetime,
    monkeypatch: pytest.MonkeyPatch,
    region: str = "eu-west-1",
) -> dict[str, str]:
    monkeypatch.setattr(botocore.auth, "get_current_datetime", lambda: now)
    request = AWSRequest(
        method="POST",
        url=endpoint,
        data=payload,
        headers={"Content-Type": JSON_CONTENT_TYPE, "X-Amz-Target": target},
    )
    botocore.auth.SigV4Auth(credentials, "sqs", region).add_auth(request)
    return dict(request.headers.items())


@pytest.mark.parametrize("endpoint", ENDPOINTS)
@pytest.mark.parametrize("credentials", [PLAIN, SESSION], ids=["keys", "session-token"])
def test_headers_are_botocores_for_every_kind_of_endpoint(
    endpoint: str, credentials: ReadOnlyCredentials, monkeypatch: pytest.MonkeyPatch
) -> None:
    payload = b'{"QueueUrl":"https://sqs/q.fifo","Entries":[{"Id":"0","MessageBody":"hi"}]}'
    target = "AmazonSQS.SendMessageBatch"
    ours = JsonPostSigner(endpoint, "eu-west-1", "sqs").headers(
        credentials, target, payload, INSTANT
    )
    assert ours == botocore_headers(endpoint, credentials, target, payload, INSTANT, monkeypatch)


@given(
    payload=st.binary(max_size=2048),
    target=st.sampled_from(["AmazonSQS.ReceiveMessage", "AmazonSQS.DeleteMessageBatch"]),
    seconds=st.integers(min_value=0, max_value=10 * 365 * 86400),
    region=st.sampled_from(["us-east-1", "eu-central-2", "ap-southeast-4"]),
)
def test_any_body_instant_and_region_signs_as_botocore_signs(
    payload: bytes, target: str, seconds: int, region: str
) -> None:
    now = datetime.datetime(2024, 1, 1, tzinfo=datetime.UTC) + datetime.timedelta(seconds=seconds)
    signer = JsonPostSigner("https://sqs.example.com/", region, "sqs")
    with pytest.MonkeyPatch.context() as monkeypatch:
        expected = botocore_headers(
            "https://sqs.example.com/", SESSION, target, payload, now, monkeypatch, region
        )
    assert signer.headers(SESSION, target, payload, now) == expected


def test_a_new_day_or_a_rotated_secret_gets_a_new_signing_key(
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    signer = JsonPostSigner("https://sqs.example.com/", "eu-west-1", "sqs")
    rotated = ReadOnlyCredentials(PLAIN.access_key, "rotated-secret", None)
    tomorrow = INSTANT + datetime.timedelta(seconds=1)
    for credentials, now in ((PLAIN, INSTANT), (PLAIN, tomorrow), (rotated, tomorrow)):
        ours = signer.headers(credentials, "AmazonSQS.ReceiveMessage", b"{}", now)
        expected = botocore_headers(
            "https://sqs.example.com/",
            credentials,
            "AmazonSQS.ReceiveMessage",
            b"{}",
            now,
            monkeypatch,
        )
        assert ours == expected
