"""limbo-moto's SES v2 account calls (moto has none): GetAccount's quota, and sending
turned off and on with PutAccountSendingAttributes, per region, as SES does."""

from __future__ import annotations

import uuid

import boto3
import pytest
from botocore.exceptions import ClientError

from limbo_devtools.local_aws import provision
from limbo_devtools.ses_account import MAX_SEND_RATE


def send(ses: object) -> str:
    response = ses.send_email(  # type: ignore[attr-defined]
        FromEmailAddress="limbo@example.com",
        Destination={"ToAddresses": ["rcpt@example.com"]},
        Content={"Simple": {"Subject": {"Data": "s"}, "Body": {"Text": {"Data": "t"}}}},
    )
    return str(response["MessageId"])


def test_a_paused_account_refuses_sends_until_sending_is_on_again(moto_endpoint: str) -> None:
    region = "ap-south-2"  # its own: nothing else sends there
    provision(moto_endpoint, region=region, queue_name=f"t{uuid.uuid4().hex[:12]}.fifo")
    ses = boto3.client("sesv2", endpoint_url=moto_endpoint, region_name=region)
    other = boto3.client("sesv2", endpoint_url=moto_endpoint, region_name="us-east-1")
    account = ses.get_account()
    assert account["SendingEnabled"] and account["SendQuota"]["MaxSendRate"] == MAX_SEND_RATE
    ses.put_account_sending_attributes(SendingEnabled=False)
    try:
        assert ses.get_account()["SendingEnabled"] is False
        with pytest.raises(ClientError) as refused:
            send(ses)
        assert refused.value.response["Error"]["Code"] == "SendingPausedException"
        assert other.get_account()["SendingEnabled"] is True  # per region
    finally:
        ses.put_account_sending_attributes(SendingEnabled=True)
    assert send(ses)
