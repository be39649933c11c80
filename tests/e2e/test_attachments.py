"""Attachments end to end, at both providers, checked byte for byte where they arrive.

A 9 MB attachment (12 MB base64, past SQS's 1 MiB) travels through S3 as an SQS
Extended Client pointer; a small inline image travels inline. Mailgun: the sink keeps
each file's SHA-256; SES: the worker reaches moto through a proxy that keeps the
SendEmail request, which is what SES itself would receive (moto drops Simple
attachments).
"""

from __future__ import annotations

import base64
import hashlib
import json
import os
import uuid
from typing import Any

import pytest

from limbo_devtools.local_aws import LocalAws
from limbo_shared.aws import new_session

from ..conftest import Limbo, sink_messages
from ..holding_proxy import HoldingProxy
from ..http_client import HTTP
from ..reliability.helpers import wait_for

LARGE = 9_000_000
SES_SEND = "/v2/email/outbound-emails"


def _mail(run: str, **extra: Any) -> dict[str, Any]:
    return {
        "from": "limbo@example.com",
        "to": ["to@example.com"],
        "subject": f"attachments {run}",
        "message": "see attached",
        **extra,
    }


def _attachments() -> tuple[list[dict[str, Any]], dict[str, bytes]]:
    report = os.urandom(LARGE)
    logo = os.urandom(2_000)
    attachments = [
        {
            "filename": "report.bin",
            "content": base64.b64encode(report).decode(),
            "content_type": "application/octet-stream",
        },
        {
            "filename": "logo.png",
            "content": base64.b64encode(logo).decode(),
            "content_type": "image/png",
            "content_id": "logo@limbo",
        },
    ]
    return attachments, {"report.bin": report, "logo@limbo": logo}


def _objects(aws: LocalAws) -> list[str]:
    s3 = new_session().client("s3", endpoint_url=aws.endpoint, region_name=aws.region)
    assert aws.payload_bucket is not None
    listing = s3.list_objects_v2(Bucket=aws.payload_bucket)
    return [item["Key"] for item in listing.get("Contents", [])]


def _submit(api: str, mail: dict[str, Any]) -> str:
    response = HTTP.post(f"{api}/v1/mail", json=mail, timeout=60)
    assert response.status_code == 200, response.text
    return str(response.json()["id"])


@pytest.mark.parametrize("provider", ["mailgun", "ses"])
def test_offloaded_and_inline_attachments_arrive_byte_exact(
    provider: str,
    tracked_limbo: Limbo,
    tracked_aws: LocalAws,
    holding_proxy: HoldingProxy,
    sink: str,
) -> None:
    holding_proxy.record(f"/{tracked_aws.payload_bucket}/")
    holding_proxy.record(SES_SEND)
    _, api = tracked_limbo.api(AWS_ENDPOINT_URL=holding_proxy.url)
    if provider == "mailgun":
        tracked_limbo.mailgun_worker(sink)
    else:
        tracked_limbo.ses_worker(AWS_ENDPOINT_URL=holding_proxy.url)
    attachments, expected = _attachments()
    run = uuid.uuid4().hex[:8]

    large_id = _submit(api, _mail(run, html='<img src="cid:logo@limbo">', attachments=attachments))
    small_id = _submit(api, _mail(run + "-inline", attachments=attachments[1:]))

    def sent(message_id: str) -> bool:
        return bool(HTTP.get(f"{api}/v1/mail/{message_id}", timeout=10).json()["status"] == "sent")

    for message_id in (large_id, small_id):
        wait_for(lambda: sent(message_id), timeout=60, what=f"{message_id} sent")  # noqa: B023
    # Only the large one went to S3 (PutObject: the one request there with a body).
    stored = [body for body in holding_proxy.recorded(f"/{tracked_aws.payload_bucket}/") if body]
    assert len(stored) == 1 and json.loads(stored[0])["id"] == large_id
    received = _received(provider, sink, holding_proxy)
    assert received[large_id] == {
        name: (hashlib.sha256(data).hexdigest(), len(data)) for name, data in expected.items()
    }
    logo = expected["logo@limbo"]
    assert received[small_id] == {"logo@limbo": (hashlib.sha256(logo).hexdigest(), len(logo))}
    # Deleted after the message was sent.
    assert _objects(tracked_aws) == []


def _received(provider: str, sink: str, proxy: HoldingProxy) -> dict[str, dict[str, Any]]:
    """Per message id: the files as the provider got them, by name (inline: content id)."""
    received: dict[str, dict[str, Any]] = {}
    if provider == "mailgun":
        for message in sink_messages(sink):
            fields: Any = message["fields"]
            files: Any = message["files"]
            received[fields["h:X-Limbo-Message-Id"][0]] = {
                f["filename"]: (f["sha256"], f["size"])
                for f in files
                if (f["field"] == "inline") == (f["filename"] == "logo@limbo")
            }
        return received
    for raw in proxy.recorded(SES_SEND):
        simple = json.loads(raw)["Content"]["Simple"]
        headers = {h["Name"]: h["Value"] for h in simple["Headers"]}
        files = {}
        for attachment in simple["Attachments"]:
            data = base64.b64decode(attachment["RawContent"])
            inline = attachment["ContentDisposition"] == "INLINE"
            name = attachment["ContentId"] if inline else attachment["FileName"]
            files[name] = (hashlib.sha256(data).hexdigest(), len(data))
        received[headers["X-Limbo-Message-Id"]] = files
    return received
