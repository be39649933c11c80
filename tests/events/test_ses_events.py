"""SES events end to end: the SES worker sends with the configuration set, the emulator
publishes the simulator's events to SNS, SNS delivers to the events queue, limbo-events
applies them to the status and the suppression list."""

from __future__ import annotations

import json

import boto3
import pytest

from limbo_devtools.ses_events import ses_records

from ..conftest import Limbo
from ..http_client import HTTP
from .conftest import outcomes, send, status, suppressed, wait_for

pytestmark = pytest.mark.slow

BOUNCE = "bounce@simulator.amazonses.com"
COMPLAINT = "complaint@simulator.amazonses.com"
SUCCESS = "success@simulator.amazonses.com"


def _inject(
    limbo: Limbo, message_id: str, simulated: str, kind: int, address: str, topic: str
) -> None:
    """Put an SNS envelope straight on the events queue, as SNS would deliver it: the
    ``kind``-th record the simulator makes for ``simulated``, about ``address``."""
    request = {
        "FromEmailAddress": "limbo@example.com",
        "Destination": {"ToAddresses": [simulated]},
        "EmailTags": [{"Name": "limbo_id", "Value": message_id}],
    }
    record = json.dumps(ses_records(request, "ses-id", "set")[kind]).replace(simulated, address)
    envelope = {"Type": "Notification", "MessageId": "x", "TopicArn": topic, "Message": record}
    sqs = boto3.client("sqs", endpoint_url=limbo.aws.endpoint, region_name=limbo.aws.region)
    assert limbo.aws.events_queue_url is not None
    sqs.send_message(QueueUrl=limbo.aws.events_queue_url, MessageBody=json.dumps(envelope))


def _drained(limbo: Limbo) -> bool:
    sqs = boto3.client("sqs", endpoint_url=limbo.aws.endpoint, region_name=limbo.aws.region)
    assert limbo.aws.events_queue_url is not None
    attributes = sqs.get_queue_attributes(
        QueueUrl=limbo.aws.events_queue_url,
        AttributeNames=["ApproximateNumberOfMessages", "ApproximateNumberOfMessagesNotVisible"],
    )["Attributes"]
    return all(value == "0" for value in attributes.values())


def test_bounce_complaint_and_delivery_reach_the_status_and_the_suppression_list(
    events_limbo: Limbo,
) -> None:
    limbo = events_limbo
    _, api = limbo.api()
    limbo.ses_worker()
    _, events = limbo.start("limbo-events")

    answer = send(api, BOUNCE, COMPLAINT, SUCCESS).json()
    message_id = answer["id"]
    seen = wait_for(lambda: len(outcomes(api, message_id)) == 3 and outcomes(api, message_id))
    assert seen[BOUNCE]["outcome"] == "bounced"
    assert seen[BOUNCE]["bounce_type"] == "permanent"
    assert seen[BOUNCE]["diagnostic"] == "smtp; 550 5.1.1 user unknown"
    assert seen[COMPLAINT]["outcome"] == "complained"
    assert seen[SUCCESS]["outcome"] == "delivered"
    assert all(entry["source"] == "ses" for entry in seen.values())
    # The furthest outcome among the recipients.
    assert status(api, message_id)["status"] == "complained"
    assert wait_for(lambda: suppressed(api) == {BOUNCE, COMPLAINT} and True)

    # From a foreign topic (a complaint for the delivered address), late (a delivery for
    # the bounced one) and twice (the complaint again): none of it changes anything.
    foreign = "arn:aws:sns:us-east-1:999999999999:not-limbos"
    topic = limbo.aws.events_topic_arn
    assert topic is not None
    _inject(limbo, message_id, COMPLAINT, 1, SUCCESS, foreign)  # a complaint, forged
    _inject(limbo, message_id, SUCCESS, 0, BOUNCE, topic)  # a delivery, after the bounce
    _inject(limbo, message_id, COMPLAINT, 1, COMPLAINT, topic)  # the complaint, again
    wait_for(lambda: _drained(limbo), what="the events queue to drain")
    after = outcomes(api, message_id)
    assert {address: entry["outcome"] for address, entry in after.items()} == {
        BOUNCE: "bounced",
        COMPLAINT: "complained",
        SUCCESS: "delivered",
    }
    assert after[COMPLAINT]["at"] == seen[COMPLAINT]["at"]  # the duplicate did not rewrite it
    assert suppressed(api) == {BOUNCE, COMPLAINT}
    metrics = HTTP.get(f"{events}/metrics", timeout=5).text
    assert 'limbo_events_rejected_total{source="ses"} 1.0' in metrics
    assert 'limbo_events_total{outcome="complained",result="stale",source="ses"} 1.0' in metrics

    # Suppressed addresses are not sent to; the rest is, and the answer says who was left out.
    refused = send(api, BOUNCE)
    assert refused.status_code == 422
    assert refused.json()["suppressed"] == [BOUNCE] and BOUNCE in refused.json()["Problem"]
    partial = send(api, f"Someone <{BOUNCE.upper()}>", SUCCESS).json()
    # Named as the API parsed it: the local part as given, the domain lower-cased.
    as_parsed = f"Someone <{BOUNCE.partition('@')[0].upper()}@{BOUNCE.partition('@')[2]}>"
    assert partial["suppressed"] == [as_parsed]
    assert status(api, partial["id"])["suppressed"] == [as_parsed]
    partial_outcomes = wait_for(lambda: outcomes(api, partial["id"]))
    assert list(partial_outcomes) == [SUCCESS]  # only SUCCESS was sent to

    # Removed from the list, the address can be sent to again.
    assert HTTP.delete(f"{api}/v1/suppressions/{BOUNCE}", timeout=10).status_code == 200
    assert send(api, BOUNCE).status_code == 200
