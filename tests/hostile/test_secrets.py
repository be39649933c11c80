"""No credential in any log line, error answer or dead letter of a full run.

Every process runs with credentials of its own (random, so a hit cannot be a
coincidence) and LOG_LEVEL=debug; the run covers the error paths where credentials
tend to leak: a Mailgun key the provider refuses (401), an SES sender it refuses,
every 4xx of the API, and a client's own Authorization header.
"""

from __future__ import annotations

import base64
import contextlib
import re
import socket
import threading
import time
import uuid
from typing import Any

import boto3
import httpx
import pytest

from limbo_devtools.local_aws import LocalAws
from limbo_devtools.otlp_receiver import OtlpReceiver

from ..conftest import Limbo
from ..http_client import HTTP
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
    # A 1 MiB body limit, so the 1.1 MB body below takes the 413 path.
    _, api = limbo.api(MAX_REQUEST_BYTES="1048576", **credentials)
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

    def both_error_paths_taken() -> bool:
        letters.extend(dead_letters(aws))  # consumed as read: keep what each poll got
        # SES dead-letters its refusals; Mailgun's 401 pauses its worker (and is logged)
        # while the messages it holds stay held, so not all six become dead letters.
        return bool(letters) and "mailgun answered 401" in limbo.log_text()

    wait_for(both_error_paths_taken, timeout=60, what="an SES dead letter and Mailgun's 401")
    reasons = [m["MessageAttributes"]["limbo-reason"]["StringValue"] for m in letters]
    assert all("SES MessageRejected" in r for r in reasons), reasons

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


class MalformedHttp:
    """A 'Mailgun' on loopback answering each request with broken HTTP that repeats the
    request's own Authorization header: a bad status line, then an oversized header line.
    An HTTP stack's exception text quotes such lines, so any of it in a reason leaks."""

    def __init__(self) -> None:
        self._server = socket.create_server(("127.0.0.1", 0))
        self._server.settimeout(0.2)
        self.requests = 0
        self._stopping = threading.Event()
        self._thread = threading.Thread(target=self._serve, daemon=True)
        self._thread.start()

    @property
    def url(self) -> str:
        return f"http://127.0.0.1:{self._server.getsockname()[1]}"

    def _serve(self) -> None:
        while not self._stopping.is_set():
            try:
                conn, _ = self._server.accept()
            except TimeoutError:
                continue
            with conn:
                conn.settimeout(5)
                head = b""
                with contextlib.suppress(OSError):
                    while b"\r\n\r\n" not in head:
                        chunk = conn.recv(65536)
                        if not chunk:
                            break
                        head += chunk
                echo = next(
                    (
                        line
                        for line in head.split(b"\r\n")
                        if line.lower().startswith(b"authorization")
                    ),
                    b"",
                )
                self.requests += 1
                if self.requests % 2:
                    answer = b"HTTP/1.1 2x0 " + echo + b"\r\n\r\n"
                else:
                    answer = b"HTTP/1.1 200 OK\r\nX-Echo: " + echo * 400 + b"\r\n\r\n"
                with contextlib.suppress(OSError):
                    conn.sendall(answer)

    def close(self) -> None:
        self._stopping.set()
        self._thread.join(timeout=5)
        self._server.close()


def test_a_provider_answering_malformed_http_leaks_its_key_nowhere(
    tracked_limbo: Limbo, tracked_aws: LocalAws
) -> None:
    mailgun_key = "key-" + uuid.uuid4().hex
    basic = base64.b64encode(f"api:{mailgun_key}".encode()).decode()
    provider = MalformedHttp()
    receiver = OtlpReceiver().start()
    try:
        tracing = {
            "OTEL_EXPORTER_OTLP_ENDPOINT": receiver.endpoint,
            "OTEL_BSP_SCHEDULE_DELAY": "100",
        }
        _, api = tracked_limbo.api(**tracing)
        tracked_limbo.start(
            "limbo-mailgun-worker",
            MAILGUN=mailgun_key,
            DOMAIN="mg.example.com",
            MAILGUN_API_URL=provider.url,
            LOG_LEVEL="debug",
            MAX_ATTEMPTS="2",
            RETRY_BASE_SECONDS="0.1",
            RETRY_MAX_SECONDS="0.2",
            **tracing,
        )
        ids = [
            HTTP.post(f"{api}/v1/mail", json={**MAIL, "subject": f"m{i}"}, timeout=30).json()["id"]
            for i in range(2)
        ]
        letters: list[dict[str, Any]] = []

        def all_dead_lettered() -> bool:
            letters.extend(dead_letters(tracked_aws))
            return len(letters) >= len(ids)

        wait_for(all_dead_lettered, timeout=90, what="both messages dead-lettered")
        assert provider.requests >= 2  # both kinds of broken answer were given

        records = [HTTP.get(f"{api}/v1/mail/{message_id}", timeout=10).json() for message_id in ids]
        assert all(r["status"] in ("failed", "retrying") for r in records), records
        assert all("malformed HTTP" in (r["last_error"] or "") for r in records), records
        table = boto3.client(
            "dynamodb", endpoint_url=tracked_aws.endpoint, region_name=tracked_aws.region
        ).scan(TableName=tracked_aws.status_table)["Items"]
        wait_for(lambda: receiver.spans(), timeout=30, what="spans exported")
        time.sleep(1)  # the last batch of spans
        everything = "\n".join(
            [
                tracked_limbo.log_text(),
                repr(records),
                repr(table),
                *(f"{m['Body']} {m['MessageAttributes']}" for m in letters),
                # Every decoded field of every span: attributes, events, status messages.
                *(repr(span) for span in receiver.spans()),
            ]
        )
        reasons = [m["MessageAttributes"]["limbo-reason"]["StringValue"] for m in letters]
        assert all("malformed HTTP" in reason for reason in reasons), reasons
        for name, value in {"MAILGUN": mailgun_key, "as basic auth": basic}.items():
            assert value not in everything, f"{name} leaked"
        assert not re.search(r"(?i)authorization\W+basic", everything)
    finally:
        provider.close()
        receiver.stop()
