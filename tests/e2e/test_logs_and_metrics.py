"""What an operator reads: JSON log lines tied to traces, free of secrets and mail content,
and Prometheus metrics that count what happened — all from the real processes."""

from __future__ import annotations

import base64
import json
import re
import uuid
from collections.abc import Iterator
from dataclasses import dataclass
from typing import Any

import boto3
import pytest
from prometheus_client.parser import text_string_to_metric_families

from ..conftest import Limbo, sink_messages
from ..http_client import HTTP
from .observed import fresh_queue, post_burst, start_sink, wait_for

BURST = 6
# The sink's first six answers with this seed: one 500, then only 200s. So exactly one
# message is retried once, whichever it is.
FLAKY_SINK = {"SINK_FAIL_500": "0.2", "SINK_SEED": "1"}
MESSAGE_EVENTS = {"sent", "failed, will retry", "dead-lettered"}


@dataclass
class Run:
    limbo: Limbo
    api: str
    broken_api: str
    worker: str
    sink: str
    secrets: list[str]
    private: list[str]  # addresses, subject and body: never at info level or above
    ids: list[str]

    def lines(self, program: str) -> list[dict[str, Any]]:
        """Every line the program's processes wrote; each must be one JSON object."""
        parsed = []
        for path in sorted(self.limbo.logs.glob(f"{program}-*.log")):
            for line in path.read_text().splitlines():
                value = json.loads(line)  # raises on anything that is not a JSON line
                assert isinstance(value, dict), line
                parsed.append(value)
        return parsed


def metrics(url: str) -> dict[tuple[str, tuple[tuple[str, str], ...]], float]:
    """Samples by (name, sorted labels), parsed by prometheus_client's own parser."""
    text = HTTP.get(f"{url}/metrics", timeout=5).text
    return {
        (s.name, tuple(sorted(s.labels.items()))): s.value
        for family in text_string_to_metric_families(text)
        for s in family.samples
    }


def value(
    samples: dict[tuple[str, tuple[tuple[str, str], ...]], float], name: str, **labels: str
) -> float:
    return samples.get((name, tuple(sorted(labels.items()))), 0.0)


@pytest.fixture(scope="module")
def run(moto_endpoint: str, tmp_path_factory: pytest.TempPathFactory) -> Iterator[Run]:
    root = tmp_path_factory.mktemp("observed")
    logs = root / "logs"
    logs.mkdir()
    mailgun_key = f"key-{uuid.uuid4().hex}"
    aws_secret = f"aws-{uuid.uuid4().hex}"
    secrets = [mailgun_key, aws_secret, base64.b64encode(f"api:{mailgun_key}".encode()).decode()]
    aws = fresh_queue(moto_endpoint)
    sink_process, sink = start_sink(root, SINK_API_KEY=mailgun_key, **FLAKY_SINK)
    limbo = Limbo(aws, logs)
    # Debug level: more lines that could leak a secret; content rules apply from info up.
    common = {"AWS_SECRET_ACCESS_KEY": aws_secret, "LOG_LEVEL": "debug"}
    try:
        sqs = boto3.client("sqs", endpoint_url=aws.endpoint, region_name=aws.region)
        sqs.send_message(
            QueueUrl=aws.queue_url,
            MessageBody="{not json",
            MessageGroupId="g",
            MessageDeduplicationId="poison",
        )
        _, api = limbo.api(PUBLISH_CONCURRENCY="1", **common)
        _, broken_api = limbo.api(
            QUEUE=aws.queue_url.replace(".fifo", "-gone.fifo"), PUBLISH_TIMEOUT="5", **common
        )
        _, worker = limbo.start(
            "limbo-mailgun-worker",
            MAILGUN=mailgun_key,
            DOMAIN="mg.example.com",
            MAILGUN_API_URL=sink,
            RETRY_BASE_SECONDS="1",
            **common,
        )
        tag = uuid.uuid4().hex[:10]
        mails = [
            {
                "from": "limbo@example.com",
                "to": [f"to-{tag}-{i}@example.com"],
                "cc": [f"cc-{tag}-{i}@example.com"],
                "bcc": [f"bcc-{tag}-{i}@example.com"],
                "subject": f"subject-{tag}",
                "message": f"body-{tag}",
            }
            for i in range(BURST)
        ]
        responses = post_burst(api, mails)
        assert [r.status_code for r in responses] == [200] * BURST
        assert HTTP.post(f"{api}/v1/mail", json={**mails[0], "to": ["nope"]}).status_code == 400
        # Without a status table a lookup answers 501; its label must still be the template.
        assert HTTP.get(f"{api}/v1/mail/{tag}").status_code == 501
        failed = HTTP.post(f"{broken_api}/v1/mail", json=mails[0])
        assert failed.status_code == 503
        wait_for(lambda: len(sink_messages(sink)) == BURST, what="all sent")
        wait_for(
            lambda: (
                value(
                    metrics(worker),
                    "limbo_worker_messages_total",
                    provider="mailgun",
                    stream="transactional",
                    outcome="dead_lettered",
                )
                == 1
            ),
            what="poison dead-lettered",
        )
        yield Run(
            limbo,
            api,
            broken_api,
            worker,
            sink,
            secrets,
            [tag],
            [r.json()["id"] for r in responses],
        )
    finally:
        limbo.stop()
        sink_process.stop()


def test_every_line_is_a_json_object_including_uvicorns(run: Run) -> None:
    for program in ("limbo-api", "limbo-mailgun-worker"):
        lines = run.lines(program)
        assert lines
        for line in lines:
            assert {"event", "level", "logger", "timestamp"} <= line.keys(), line
        assert any(line["logger"].startswith("uvicorn") for line in lines), (
            "uvicorn's own lines go through the same pipeline"
        )


def test_api_lines_inside_a_request_carry_trace_span_and_message_id(run: Run) -> None:
    lines = run.lines("limbo-api")
    queued = [line for line in lines if line["event"] == "queued"]
    assert sorted(line["message_id"] for line in queued) == sorted(run.ids)
    [not_queued] = [line for line in lines if line["event"] == "not queued"]
    for line in [*queued, not_queued]:
        assert re.fullmatch(r"[0-9a-f]{32}", line["trace_id"])
        assert re.fullmatch(r"[0-9a-f]{16}", line["span_id"])
    for line in lines:
        if "trace_id" in line:
            assert {"span_id", "message_id"} <= line.keys(), line


def test_worker_lines_inside_a_message_carry_trace_span_message_id_and_provider(
    run: Run,
) -> None:
    lines = run.lines("limbo-mailgun-worker")
    events = [line["event"] for line in lines]
    assert events.count("sent") == BURST
    assert events.count("failed, will retry") == 1
    assert events.count("dead-lettered") == 1
    for line in lines:
        if line["event"] in MESSAGE_EVENTS:
            assert "trace_id" in line, line
        if "trace_id" in line:
            assert line["span_id"] and line["provider"] == "mailgun", line
            # An unparseable message has no limbo id; the queue's id still names it.
            assert line.get("message_id") or line.get("sqs_message_id"), line
    sent_ids = [line["message_id"] for line in lines if line["event"] == "sent"]
    assert sorted(sent_ids) == sorted(run.ids)


def test_no_secret_appears_in_any_line(run: Run) -> None:
    text = run.limbo.log_text()
    assert text.count("\n") > 20
    for secret in run.secrets:
        assert secret not in text


def test_no_addresses_subject_or_body_at_info_level_or_above(run: Run) -> None:
    for program in ("limbo-api", "limbo-mailgun-worker"):
        for line in run.lines(program):
            if line["level"] == "debug":
                continue
            text = json.dumps(line)
            for private in run.private:
                assert private not in text, line


def test_api_metrics_count_requests_by_route_and_status(run: Run) -> None:
    samples = metrics(run.api)
    post = {"method": "POST", "route": "/v1/mail"}
    assert value(samples, "limbo_api_requests_total", **post, status="200") == BURST
    assert value(samples, "limbo_api_requests_total", **post, status="400") == 1
    assert value(samples, "limbo_api_request_duration_seconds_count", **post) == BURST + 1
    assert (
        value(samples, "limbo_api_request_duration_seconds_bucket", **post, le="+Inf") == BURST + 1
    )
    assert value(samples, "limbo_api_messages_published_total") == BURST
    batches = value(samples, "limbo_api_publish_batch_size_count")
    assert value(samples, "limbo_api_publish_batch_size_sum") == BURST
    assert 1 <= batches < BURST, "the burst shared batches"
    # The lookup is counted under a template, never under the path the client made up.
    not_found = [
        labels
        for (name, labels), _ in samples.items()
        if name == "limbo_api_requests_total" and ("status", "501") in labels
    ]
    assert not_found and all(("route", "/v1/mail/{message_id}") in labels for labels in not_found)

    broken = metrics(run.broken_api)
    assert value(broken, "limbo_api_publish_failures_total", reason="unavailable") == 1
    assert value(broken, "limbo_api_messages_published_total") == 0
    assert value(broken, "limbo_api_requests_total", **post, status="503") == 1


def test_worker_metrics_count_each_outcome(run: Run) -> None:
    samples = metrics(run.worker)
    mailgun = {"provider": "mailgun", "stream": "transactional"}
    attempts = BURST + 1  # one message was sent twice: a 500, then success
    # Plus the poison message, and the retried one's copy received before it was due.
    assert value(samples, "limbo_worker_messages_received_total", **mailgun) == attempts + 2
    assert value(samples, "limbo_worker_messages_total", **mailgun, outcome="deferred") == 1
    assert value(samples, "limbo_worker_messages_total", **mailgun, outcome="sent") == BURST
    assert value(samples, "limbo_worker_messages_total", **mailgun, outcome="retried") == 1
    assert value(samples, "limbo_worker_messages_total", **mailgun, outcome="dead_lettered") == 1
    provider = {"provider": "mailgun"}
    assert (
        value(samples, "limbo_worker_provider_call_duration_seconds_count", **provider) == attempts
    )
    assert value(samples, "limbo_worker_time_in_queue_seconds_count", **provider) == attempts
    assert value(samples, "limbo_worker_time_in_queue_seconds_sum", **provider) > 0
    assert value(samples, "limbo_worker_in_flight_messages", **mailgun) == 0


def test_metric_names_and_labels_follow_prometheus_conventions(run: Run) -> None:
    for url in (run.api, run.worker):
        text = HTTP.get(f"{url}/metrics", timeout=5).text
        for family in text_string_to_metric_families(text):
            if not family.name.startswith("limbo_"):
                continue
            # limbo_<subsystem>_<what>, one subsystem per component that owns the metric.
            assert re.fullmatch(r"limbo_(api|worker|status_store|webhook)_[a-z_]+", family.name)
            if family.type == "histogram" and "size" not in family.name:
                assert family.name.endswith("_seconds"), family.name
            for sample in family.samples:
                if family.type == "counter" and not sample.name.endswith("_created"):
                    assert sample.name.endswith("_total"), sample.name
                for label in sample.labels.values():
                    # Low cardinality: no addresses, no message ids.
                    assert "@" not in label and not re.search(r"[0-9a-f]{8}-", label), label
