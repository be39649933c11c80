"""Create what limbo needs in an AWS emulator: the two streams' FIFO queues
(transactional and bulk) and the dead-letter queue they share, an SES identity, the
schedule queue, the S3 bucket for large payloads (with its expiry rule) and (when
asked) the DynamoDB status table with its TTL, the webhook queue and the delivery-event
path: SNS topic, standard events queue (with its DLQ and the policy that lets the topic
send), the subscription, and an SES configuration set whose event destination is the topic.

Idempotent; prints the environment variables the API and workers need.
"""

from __future__ import annotations

import argparse
import contextlib
import json
import os
from dataclasses import dataclass
from typing import TYPE_CHECKING, TypedDict

from limbo_shared.aws import new_session

if TYPE_CHECKING:
    from types_boto3_dynamodb import DynamoDBClient
    from types_boto3_s3 import S3Client
    from types_boto3_sqs import SQSClient
    from types_boto3_sqs.literals import QueueAttributeNameType

__all__ = ["PAYLOAD_EXPIRY_DAYS", "LocalAws", "provision"]

# Set explicitly: older queues and IaC defaults still say 256 KiB.
MAX_MESSAGE_SIZE = "1048576"
# Longer than any message can live on the queues (SQS keeps at most 14 days).
PAYLOAD_EXPIRY_DAYS = 15


@dataclass(frozen=True)
class LocalAws:
    queue_url: str
    dead_letter_url: str
    region: str
    endpoint: str
    sender: str
    status_table: str | None = None
    bulk_queue_url: str | None = None
    schedule_queue_url: str | None = None
    payload_bucket: str | None = None
    webhook_queue_url: str | None = None
    events_queue_url: str | None = None
    events_topic_arn: str | None = None
    configuration_set: str | None = None

    def environment(self) -> dict[str, str]:
        optional = {
            "STATUS_TABLE": self.status_table,
            "BULK_QUEUE": self.bulk_queue_url,
            "SCHEDULE_QUEUE": self.schedule_queue_url,
            "PAYLOAD_BUCKET": self.payload_bucket,
            "WEBHOOK_QUEUE": self.webhook_queue_url,
        }
        events = {}
        if self.events_queue_url and self.events_topic_arn and self.configuration_set:
            events = {
                "EVENTS_QUEUE": self.events_queue_url,
                "SES_EVENTS_TOPIC_ARN": self.events_topic_arn,
                "SES_CONFIGURATION_SET": self.configuration_set,
                # The emulator cannot sign as SNS does; real deployments keep this on.
                "SNS_VERIFY_SIGNATURES": "false",
            }
        return {
            **{name: value for name, value in optional.items() if value},
            **events,
            "QUEUE": self.queue_url,
            "DEADLETTERQUEUE": self.dead_letter_url,
            "REGION": self.region,
            "AWS_ENDPOINT_URL": self.endpoint,
            "AWS_ACCESS_KEY_ID": os.environ.get("AWS_ACCESS_KEY_ID", "testing"),
            "AWS_SECRET_ACCESS_KEY": os.environ.get("AWS_SECRET_ACCESS_KEY", "testing"),
        }


class _ClientArguments(TypedDict):
    endpoint_url: str
    region_name: str
    aws_access_key_id: str
    aws_secret_access_key: str


def _client_arguments(endpoint: str, region: str) -> _ClientArguments:
    return {
        "endpoint_url": endpoint,
        "region_name": region,
        "aws_access_key_id": os.environ.get("AWS_ACCESS_KEY_ID", "testing"),
        "aws_secret_access_key": os.environ.get("AWS_SECRET_ACCESS_KEY", "testing"),
    }


def provision(
    endpoint: str,
    *,
    region: str = "us-east-1",
    queue_name: str = "limbo.fifo",
    sender: str = "limbo@example.com",
    max_receive_count: int = 5,
    visibility_timeout: int = 30,
    status_table: str | None = None,
    bulk: bool = True,
    events: bool = False,
) -> LocalAws:
    """``bulk=False`` leaves the bulk queue out (one queue serves both streams)."""
    session, arguments = new_session(), _client_arguments(endpoint, region)
    sqs = session.client("sqs", **arguments)
    base = queue_name.removesuffix(".fifo")
    dead_letter_url = sqs.create_queue(
        QueueName=f"{base}-dlq.fifo",
        Attributes={
            "FifoQueue": "true",
            "MessageRetentionPeriod": "1209600",
            "MaximumMessageSize": MAX_MESSAGE_SIZE,
        },
    )["QueueUrl"]
    dead_letter_arn = sqs.get_queue_attributes(
        QueueUrl=dead_letter_url, AttributeNames=["QueueArn"]
    )["Attributes"]["QueueArn"]
    attributes: dict[QueueAttributeNameType, str] = {
        "FifoQueue": "true",
        "VisibilityTimeout": str(visibility_timeout),
        "MaximumMessageSize": MAX_MESSAGE_SIZE,
        "RedrivePolicy": json.dumps(
            {"deadLetterTargetArn": dead_letter_arn, "maxReceiveCount": max_receive_count}
        ),
    }
    queue_url = sqs.create_queue(QueueName=queue_name, Attributes=attributes)["QueueUrl"]
    bulk_queue_url = (
        sqs.create_queue(QueueName=f"{base}-bulk.fifo", Attributes=attributes)["QueueUrl"]
        if bulk
        else None
    )
    ses = session.client("sesv2", **arguments)
    ses.create_email_identity(EmailIdentity=sender)
    # Mail goes out from the client's own From (allowed by SENDER_DOMAINS): verify the
    # sender's whole domain, as a deployment verifies its sending domains.
    with contextlib.suppress(ses.exceptions.AlreadyExistsException):
        ses.create_email_identity(EmailIdentity=sender.rpartition("@")[2])
    webhook_queue_url = None
    if status_table is not None:
        create_status_table(session.client("dynamodb", **arguments), status_table)
        # Webhooks need the registry in the status table; their queue is a standard one.
        webhook_queue_url = sqs.create_queue(
            QueueName=f"{base}-webhooks", Attributes={"VisibilityTimeout": "30"}
        )["QueueUrl"]
    # A standard queue: only those take a per-message DelaySeconds.
    schedule_url = sqs.create_queue(
        QueueName=f"{base}-schedule",
        Attributes={"MaximumMessageSize": MAX_MESSAGE_SIZE, "VisibilityTimeout": "30"},
    )["QueueUrl"]
    bucket = f"{base.lower()[:50]}-payloads"
    create_payload_bucket(session.client("s3", **arguments), bucket)
    events_url = topic_arn = configuration_set = None
    if events:
        events_url, topic_arn, configuration_set = provision_events(endpoint, region, base)
    return LocalAws(
        queue_url,
        dead_letter_url,
        region,
        endpoint,
        sender,
        status_table,
        bulk_queue_url,
        schedule_queue_url=schedule_url,
        payload_bucket=bucket,
        webhook_queue_url=webhook_queue_url,
        events_queue_url=events_url,
        events_topic_arn=topic_arn,
        configuration_set=configuration_set,
    )


def provision_events(endpoint: str, region: str, base: str) -> tuple[str, str, str]:
    """The README's deploy commands, against the emulator: queue, topic, set. Idempotent."""
    session, arguments = new_session(), _client_arguments(endpoint, region)
    sqs = session.client("sqs", **arguments)
    dead_letter_url = sqs.create_queue(
        QueueName=f"{base}-events-dlq", Attributes={"MessageRetentionPeriod": "1209600"}
    )["QueueUrl"]
    dead_letter_arn = _queue_arn(sqs, dead_letter_url)
    queue_url = sqs.create_queue(
        QueueName=f"{base}-events",
        Attributes={
            "RedrivePolicy": json.dumps(
                {"deadLetterTargetArn": dead_letter_arn, "maxReceiveCount": 10}
            )
        },
    )["QueueUrl"]
    queue_arn = _queue_arn(sqs, queue_url)
    sns = session.client("sns", **arguments)
    topic_arn = sns.create_topic(Name=f"{base}-ses-events")["TopicArn"]
    policy = {
        "Version": "2012-10-17",
        "Statement": [
            {
                "Effect": "Allow",
                "Principal": {"Service": "sns.amazonaws.com"},
                "Action": "sqs:SendMessage",
                "Resource": queue_arn,
                "Condition": {"ArnEquals": {"aws:SourceArn": topic_arn}},
            }
        ],
    }
    sqs.set_queue_attributes(QueueUrl=queue_url, Attributes={"Policy": json.dumps(policy)})
    # The SNS envelope is kept (no RawMessageDelivery): limbo-events checks its TopicArn
    # and verifies its signature.
    sns.subscribe(TopicArn=topic_arn, Protocol="sqs", Endpoint=queue_arn)
    configuration_set = f"{base}-events"
    ses = session.client("ses", **arguments)
    with contextlib.suppress(ses.exceptions.ConfigurationSetAlreadyExistsException):
        ses.create_configuration_set(ConfigurationSet={"Name": configuration_set})
    with contextlib.suppress(ses.exceptions.EventDestinationAlreadyExistsException):
        ses.create_configuration_set_event_destination(
            ConfigurationSetName=configuration_set,
            EventDestination={
                # moto wants destination names unique across configuration sets (SES
                # only within one); a second set's "limbo-sns" would be refused.
                "Name": f"{configuration_set}-sns",
                "Enabled": True,
                "MatchingEventTypes": ["bounce", "complaint", "delivery"],
                "SNSDestination": {"TopicARN": topic_arn},
            },
        )
    return queue_url, topic_arn, configuration_set


def _queue_arn(sqs: SQSClient, url: str) -> str:
    attributes = sqs.get_queue_attributes(QueueUrl=url, AttributeNames=["QueueArn"])
    return str(attributes["Attributes"]["QueueArn"])


def create_payload_bucket(s3: S3Client, name: str) -> None:
    """The bucket for offloaded payloads, as the README documents it: an expiry rule
    deletes what the workers did not (a crash between the send and the delete)."""
    region = s3.meta.region_name
    with contextlib.suppress(s3.exceptions.BucketAlreadyOwnedByYou):
        if region == "us-east-1":
            s3.create_bucket(Bucket=name)
        else:  # S3 wants the region named everywhere but in us-east-1
            s3.create_bucket(
                Bucket=name,
                CreateBucketConfiguration={"LocationConstraint": region},  # type: ignore[typeddict-item]
            )
    s3.put_bucket_lifecycle_configuration(
        Bucket=name,
        LifecycleConfiguration={
            "Rules": [
                {
                    "ID": "limbo-payload-expiry",
                    "Status": "Enabled",
                    "Filter": {"Prefix": ""},
                    "Expiration": {"Days": PAYLOAD_EXPIRY_DAYS},
                }
            ]
        },
    )


def create_status_table(dynamodb: DynamoDBClient, name: str) -> None:
    """The table the README documents: one string key `pk`, on-demand, TTL on `expires_at`,
    and the sparse index `suppressions` that lists one API key's suppression list."""
    # Idempotent, like the queues: an existing table is kept.
    with contextlib.suppress(dynamodb.exceptions.ResourceInUseException):
        dynamodb.create_table(
            TableName=name,
            KeySchema=[{"AttributeName": "pk", "KeyType": "HASH"}],
            AttributeDefinitions=[
                {"AttributeName": "pk", "AttributeType": "S"},
                {"AttributeName": "supp_owner", "AttributeType": "S"},
                {"AttributeName": "supp_address", "AttributeType": "S"},
            ],
            GlobalSecondaryIndexes=[
                {
                    "IndexName": "suppressions",
                    "KeySchema": [
                        {"AttributeName": "supp_owner", "KeyType": "HASH"},
                        {"AttributeName": "supp_address", "KeyType": "RANGE"},
                    ],
                    "Projection": {"ProjectionType": "ALL"},
                }
            ],
            BillingMode="PAY_PER_REQUEST",
        )
    dynamodb.get_waiter("table_exists").wait(TableName=name, WaiterConfig={"Delay": 1})
    ttl = dynamodb.describe_time_to_live(TableName=name)["TimeToLiveDescription"]
    if ttl.get("TimeToLiveStatus") not in ("ENABLED", "ENABLING"):
        dynamodb.update_time_to_live(
            TableName=name,
            TimeToLiveSpecification={"Enabled": True, "AttributeName": "expires_at"},
        )


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__)
    parser.add_argument(
        "--endpoint", default=os.environ.get("AWS_ENDPOINT_URL", "http://127.0.0.1:5000")
    )
    parser.add_argument("--region", default=os.environ.get("REGION", "us-east-1"))
    parser.add_argument("--queue-name", default="limbo.fifo")
    parser.add_argument("--sender", default="limbo@example.com")
    parser.add_argument(
        "--status-table",
        default="limbo-status",
        help="DynamoDB table for message tracking; '' for none",
    )
    args = parser.parse_args()
    aws = provision(
        args.endpoint,
        region=args.region,
        queue_name=args.queue_name,
        sender=args.sender,
        status_table=args.status_table or None,
        events=bool(args.status_table),
    )
    for key, value in aws.environment().items():
        print(f"export {key}={value}")


if __name__ == "__main__":
    main()
