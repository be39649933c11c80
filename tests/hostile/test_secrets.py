"""No credential in any log line, error answer or dead letter of a full run.

Every process runs with credentials of its own (random, so a hit cannot be a
coincidence) and LOG_LEVEL=debug; the run covers the error paths where credentials
tend to leak: a Mailgun key the provider refuses (401), an SES sender it refuses,
every 4xx of the API, and a client's own Authorization header.
"""

from __future__ import annotations

import base64
import re
import uuid
from typing import Any

import httpx
import pytest

from limbo_devtools.local_aws import LocalAws

from ..conftest import Limbo
from ..reliability.helpers import MAIL, dead_letters, wait_for

pytestmark = pytest.mark.slow

UNVERIFIED = {**MAIL, "from": "a@unverified.example.org"}


def test_no_credential_appears_in_logs_error_answers_or_dead_letters(
    limbo: Limbo, aws: LocalAws, sink_factory: Any
) -> None:
    mailgun_key = "key-" + uuid.uuid4().hex
    credentials = {
        "AWS_ACCESS_KEY_ID": "AKIA" + uuid.uuid4().hex[:16].upper(),
        "AWS_SECRET_ACCESS_KEY": uuid.uuid4().hex + uuid.uuid4().hex[:8],
        "AWS_SESSION_TOKEN": "token" + uuid.uuid4().hex * 3,
        "LOG_LEVEL": "debug",
    }
    client_token = "client-" + uuid.uuid4().hex
    secrets = {
        "MAILGUN": mailgun_key,
        "MAILGUN as basic auth": base64.b64encode(f"api:{mailgun_key}".encode()).decode(),
        "client token": client_token,
        **{name: value for name, value in credentials.items() if name.startswith("AWS")},
    }
    # The sink knows another key, so Mailgun refuses ours: the 401 path is exercised.
    sink = sink_factory(SINK_API_KEY="key-" + uuid.uuid4().hex)
    _, api = limbo.api(**credentials)
    limbo.start(
        "limbo-mailgun-worker",
        MAILGUN=mailgun_key,
        DOMAIN="mg.example.com",
        MAILGUN_API_URL=sink,
        **credentials,
    )
    # From an unverified domain: SES refuses every send (MessageRejected).
    limbo.start("limbo-ses-worker", **credentials)

    answers: list[httpx.Response] = []
    auth = {"Authorization": f"Bearer {client_token}", "X-Api-Key": client_token}
    with httpx.Client(base_url=api, headers=auth, timeout=30) as http:
        for i in range(6):
            answers.append(http.post("/v1/mail", json={**UNVERIFIED, "subject": f"secret {i}"}))
        answers += [
            http.post("/v1/mail", content=b"{not json"),
            http.post("/v1/mail", json={**MAIL, "to": ["nope"]}),
            http.post("/v1/mail", content=b"x" * 1_100_000),
            http.post("/v1/mail", content=b"a=b", headers={"Content-Type": "text/plain"}),
            http.put("/v1/mail", json=MAIL),
            http.get("/nowhere"),
            http.get("/ready"),
            http.get("/metrics"),
            http.get("/openapi.json"),
        ]
    assert [a.status_code for a in answers[:6]] == [200] * 6
    assert {a.status_code for a in answers[6:]} >= {400, 404, 405, 413, 415}

    letters: list[dict[str, Any]] = []

    def six_dead_letters() -> bool:
        letters.extend(dead_letters(aws))  # consumed as read: keep what each poll got
        return len(letters) >= 6

    wait_for(six_dead_letters, timeout=60, what="six dead letters")
    reasons = [m["MessageAttributes"]["limbo-reason"]["StringValue"] for m in letters]
    assert any("mailgun answered 401" in r for r in reasons) or any("SES" in r for r in reasons)

    log = limbo.log_text()
    everything = "\n".join(
        [
            log,
            *(f"{a.status_code} {dict(a.headers)} {a.text}" for a in answers),
            *(f"{m['Body']} {m['MessageAttributes']}" for m in letters),
        ]
    )
    for name, value in secrets.items():
        assert value not in everything, f"{name} leaked"
    assert not re.search(r"(?i)authorization\W+(bearer|basic|aws4)", everything)
