"""The whole system as the local run starts it: API and both workers as real processes."""

from __future__ import annotations

import time
from typing import Any

from limbo_devtools.local_aws import LocalAws

from ..conftest import Limbo, sink_messages
from ..http_client import HTTP


def ses_messages(aws: LocalAws) -> list[dict[str, Any]]:
    data = HTTP.get(f"{aws.endpoint}/moto-api/data.json", timeout=10).json()
    return list(data["ses"]["Message"])


def test_each_message_is_delivered_exactly_once_with_its_fields(
    limbo: Limbo, aws: LocalAws, sink: str
) -> None:
    _, api = limbo.api()
    limbo.mailgun_worker(sink)
    limbo.ses_worker()
    already_in_ses = {m["id"] for m in ses_messages(aws)}

    sent: dict[str, dict[str, Any]] = {}
    started = time.monotonic()
    for i in range(30):
        mail = {
            "from": "limbo@example.com",
            "to": [f"to{i}@example.com"],
            "cc": [f"cc{i}@example.com"],
            "bcc": [f"bcc{i}@example.com"],
            "subject": f"e2e {i} {started}",
            "message": f"body {i}",
        }
        response = HTTP.post(f"{api}/v1/mail", json=mail)
        assert response.status_code == 200
        sent[mail["subject"]] = mail

    bad = HTTP.post(f"{api}/v1/mail", json={"from": "limbo@example.com", "to": ["nope"]})
    assert bad.status_code == 400
    assert bad.json()["Message"] == "not submitted" and "to[0]" in bad.json()["Problem"]

    def delivered() -> list[tuple[str, dict[str, Any]]]:
        found = []
        for message in sink_messages(sink):
            fields = message["fields"]
            found.append(
                (
                    fields["subject"][0],
                    {  # type: ignore[index]
                        "from": fields["from"][0],
                        "to": fields["to"],  # type: ignore[index]
                        "cc": fields["cc"],
                        "bcc": fields["bcc"],  # type: ignore[index]
                        "message": fields["text"][0],
                    },
                )
            )  # type: ignore[index]
        for message in ses_messages(aws):
            if message["id"] in already_in_ses or message["subject"] not in sent:
                continue
            destinations = message["destinations"]
            found.append(
                (
                    message["subject"],
                    {
                        "from": message["source"],
                        "to": destinations["ToAddresses"],
                        "cc": destinations["CcAddresses"],
                        "bcc": destinations["BccAddresses"],
                        "message": message["body"],
                    },
                )
            )
        return found

    deadline = time.monotonic() + 30
    while time.monotonic() < deadline and len(delivered()) < len(sent):
        time.sleep(0.2)
    time.sleep(1.0)  # anything delivered twice would show up now
    found = delivered()
    subjects = [subject for subject, _ in found]
    assert sorted(subjects) == sorted(sent), "each message exactly once"
    for subject, fields in found:
        expected = sent[subject]
        assert fields == {k: expected[k] for k in ("from", "to", "cc", "bcc", "message")}


def test_one_message_is_delivered_within_a_second(limbo: Limbo, sink: str) -> None:
    _, api = limbo.api()
    limbo.mailgun_worker(sink)
    time.sleep(1.5)  # both long polls are waiting
    started = time.monotonic()
    HTTP.post(
        f"{api}/v1/mail",
        json={"from": "a@example.com", "to": ["b@example.com"], "subject": "fast", "message": "x"},
    ).raise_for_status()
    while not sink_messages(sink):
        assert time.monotonic() - started < 1.0, "not delivered within a second"
        time.sleep(0.02)
