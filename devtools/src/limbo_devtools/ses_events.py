"""SES's event publishing, which moto lacks, for the mailbox-simulator addresses.

moto's SES v2 ``SendEmail`` accepts and stores a message but ignores its configuration
set, so no event ever reaches SNS (its identity notifications are canned texts without
tags). This WSGI middleware in ``limbo-moto`` watches successful ``SendEmail`` calls and,
for recipients at ``simulator.amazonses.com``, publishes the SES event record a real
configuration set would, to the SNS topic of the set's SNS event destination (created
with SES's own API), so the event takes the real SNS → SQS path:

- ``success@`` and ``ooto@``: Delivery
- ``bounce@``: Bounce, Permanent/General;  ``suppressionlist@``: Permanent/OnAccountSuppressionList
- ``complaint@``: Delivery, then Complaint (abuse)

``SES_SIMULATOR_DOMAINS`` (comma-separated) adds domains that behave the same way.
"""

from __future__ import annotations

import io
import json
import re
from collections.abc import Callable, Iterable
from datetime import UTC, datetime
from email.utils import parseaddr
from typing import Any

__all__ = ["SIMULATOR_DOMAIN", "SesEventPublisher", "ses_records"]

SIMULATOR_DOMAIN = "simulator.amazonses.com"
_SEND_PATH = "/v2/email/outbound-emails"
_REGION = re.compile(r"Credential=[^/]+/\d{8}/([a-z0-9-]+)/")

WsgiApp = Callable[[dict[str, Any], Callable[..., Any]], Iterable[bytes]]


def _now() -> str:
    return datetime.now(UTC).isoformat(timespec="milliseconds").replace("+00:00", "Z")


def ses_records(
    request: dict[str, Any],
    message_id: str,
    configuration_set: str,
    domains: frozenset[str] = frozenset({SIMULATOR_DOMAIN}),
) -> list[dict[str, Any]]:
    """The event records SES would publish for the simulator recipients of one send."""
    destination = request.get("Destination") or {}
    recipients = [
        parseaddr(value)[1].lower()
        for name in ("ToAddresses", "CcAddresses", "BccAddresses")
        for value in destination.get(name, [])
    ]
    tags: dict[str, list[str]] = {"ses:configuration-set": [configuration_set]}
    for tag in request.get("EmailTags") or []:
        tags.setdefault(tag["Name"], []).append(tag["Value"])
    now = _now()
    mail = {
        "timestamp": now,
        "messageId": message_id,
        "source": request.get("FromEmailAddress", ""),
        "destination": recipients,
        "tags": tags,
    }
    records: list[dict[str, Any]] = []
    for address in recipients:
        local, _, domain = address.partition("@")
        if domain not in domains:
            continue
        delivery = {
            "eventType": "Delivery",
            "mail": mail,
            "delivery": {
                "timestamp": now,
                "recipients": [address],
                "smtpResponse": "250 2.6.0 Message received",
                "reportingMTA": "a8-70.smtp-out.amazonses.com",
            },
        }
        if local in ("success", "ooto"):
            records.append(delivery)
        elif local in ("bounce", "suppressionlist"):
            subtype = "General" if local == "bounce" else "OnAccountSuppressionList"
            diagnostic = (
                "smtp; 550 5.1.1 user unknown"
                if local == "bounce"
                else "Amazon SES did not send the message to this address because it is on "
                "the suppression list for your account."
            )
            records.append(
                {
                    "eventType": "Bounce",
                    "mail": mail,
                    "bounce": {
                        "bounceType": "Permanent",
                        "bounceSubType": subtype,
                        "bouncedRecipients": [
                            {
                                "emailAddress": address,
                                "action": "failed",
                                "status": "5.1.1",
                                "diagnosticCode": diagnostic,
                            }
                        ],
                        "timestamp": now,
                        "feedbackId": f"{message_id}-bounce",
                    },
                }
            )
        elif local == "complaint":
            records.append(delivery)
            records.append(
                {
                    "eventType": "Complaint",
                    "mail": mail,
                    "complaint": {
                        "complainedRecipients": [{"emailAddress": address}],
                        "complaintFeedbackType": "abuse",
                        "timestamp": now,
                        "feedbackId": f"{message_id}-complaint",
                    },
                }
            )
    return records


def _topic(account: str, region: str, configuration_set: str, event_type: str) -> str | None:
    from moto.ses.models import ses_backends

    destination = ses_backends[account][region].config_set_event_destination.get(configuration_set)
    if not destination:
        return None
    matching = destination.get("MatchingEventTypes") or []
    if isinstance(matching, dict):  # the query protocol's member list, as moto parsed it
        matching = list(matching.values())
    wanted = {"Bounce": "bounce", "Complaint": "complaint", "Delivery": "delivery"}[event_type]
    if matching and wanted not in [str(m).lower() for m in matching]:
        return None
    sns = destination.get("SNSDestination") or {}
    topic = sns.get("TopicARN")
    return str(topic) if topic else None


class SesEventPublisher:
    def __init__(
        self, app: WsgiApp, domains: frozenset[str] = frozenset({SIMULATOR_DOMAIN})
    ) -> None:
        self.app = app
        self.domains = domains

    def __call__(self, environ: dict[str, Any], start_response: Callable[..., Any]) -> Any:
        if environ.get("REQUEST_METHOD") != "POST" or environ.get("PATH_INFO") != _SEND_PATH:
            return self.app(environ, start_response)
        length = int(environ.get("CONTENT_LENGTH") or 0)
        body = environ["wsgi.input"].read(length)
        environ["wsgi.input"] = io.BytesIO(body)
        captured: dict[str, Any] = {}

        def capture(status: str, headers: list[Any], exc_info: Any = None) -> Any:
            captured["status"] = status
            return start_response(status, headers, exc_info)

        answer = b"".join(self.app(environ, capture))
        if str(captured.get("status", "")).startswith("200"):
            try:
                self._publish(environ, json.loads(body), json.loads(answer)["MessageId"])
            except Exception as error:  # the emulator's extra must never break the send
                print(f"limbo-moto: SES event not published: {error!r}", flush=True)
        return [answer]

    def _publish(self, environ: dict[str, Any], request: dict[str, Any], message_id: str) -> None:
        configuration_set = request.get("ConfigurationSetName")
        if not configuration_set:
            return
        from moto.core.models import DEFAULT_ACCOUNT_ID
        from moto.sns.models import sns_backends

        match = _REGION.search(environ.get("HTTP_AUTHORIZATION", ""))
        region = match.group(1) if match else "us-east-1"
        for record in ses_records(request, message_id, configuration_set, self.domains):
            topic = _topic(DEFAULT_ACCOUNT_ID, region, configuration_set, record["eventType"])
            if topic is not None:
                sns_backends[DEFAULT_ACCOUNT_ID][region].publish(json.dumps(record), arn=topic)
