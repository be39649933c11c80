"""One trace per message, from the HTTP request at the API to the provider call.

The real API and worker processes export over OTLP/HTTP to a receiver inside the test,
which decodes exactly what an OpenTelemetry collector or Jaeger would get.
"""

from __future__ import annotations

import json
import signal
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path

import pytest

from limbo_devtools.otlp_receiver import OtlpReceiver, ReceivedSpan

from ..conftest import Limbo, sink_messages
from .observed import fresh_queue, one, post_burst, start_sink, wait_for

BURST = 8
WORKERS = {"limbo-mailgun-worker": "mailgun send", "limbo-ses-worker": "ses send"}
# Export within 100 ms of a span ending, so the test need not wait for the 5 s default.
FAST_EXPORT = {"OTEL_BSP_SCHEDULE_DELAY": "100"}


@dataclass
class Burst:
    receiver: OtlpReceiver
    queue: str
    ids: list[str]
    limbo: Limbo

    def producer(self, message_id: str) -> ReceivedSpan:
        [span] = [
            s
            for s in self.receiver.spans()
            if s.kind == "PRODUCER" and s.attributes.get("limbo.message.id") == message_id
        ]
        return span

    def trace_of(self, message_id: str) -> list[ReceivedSpan]:
        return self.receiver.traces()[self.producer(message_id).trace_id]


def _complete(receiver: OtlpReceiver, ids: list[str]) -> bool:
    """Every message's trace has its server, producer, consumer and provider spans."""
    producers = {
        s.attributes.get("limbo.message.id"): s for s in receiver.spans() if s.kind == "PRODUCER"
    }
    if not all(i in producers for i in ids):
        return False
    traces = receiver.traces()
    for message_id in ids:
        kinds = [(s.kind, s.name) for s in traces[producers[message_id].trace_id]]
        if not {"SERVER", "CONSUMER"} <= {k for k, _ in kinds}:
            return False
        if not any(kind == "CLIENT" and name in WORKERS.values() for kind, name in kinds):
            return False
    batched = sum(
        int(s.attributes.get("messaging.batch.message_count", 0))
        for s in receiver.spans()
        if s.kind == "CLIENT" and s.name.startswith("send ")
    )
    return batched == len(ids)


@pytest.fixture(scope="module")
def burst(moto_endpoint: str, tmp_path_factory: pytest.TempPathFactory) -> Iterator[Burst]:
    logs = tmp_path_factory.mktemp("tracing")
    receiver = OtlpReceiver().start()
    aws = fresh_queue(moto_endpoint)
    sink_process, sink = start_sink(logs)
    limbo = Limbo(aws, logs)
    exporting = {"OTEL_EXPORTER_OTLP_ENDPOINT": receiver.endpoint, **FAST_EXPORT}
    try:
        # One SendMessageBatch in flight at a time: the rest of the burst must share batches.
        _, api = limbo.api(PUBLISH_CONCURRENCY="1", **exporting)
        limbo.mailgun_worker(sink, **exporting)
        limbo.ses_worker(**exporting)
        mails = [
            {
                "from": "limbo@example.com",
                "to": [f"to{i}@example.com"],
                "subject": f"trace {i}",
                "message": f"body {i}",
            }
            for i in range(BURST)
        ]
        responses = post_burst(api, mails)
        assert [r.status_code for r in responses] == [200] * BURST
        ids = [r.json()["id"] for r in responses]
        wait_for(lambda: _complete(receiver, ids), what="all traces complete")
        yield Burst(receiver, aws.queue_url.rsplit("/", 1)[-1], ids, limbo)
    finally:
        limbo.stop()
        sink_process.stop()
        receiver.stop()


def test_each_message_is_one_trace_from_the_http_request_to_the_provider_call(
    burst: Burst,
) -> None:
    queue = burst.queue
    traces = {burst.producer(i).trace_id for i in burst.ids}
    assert len(traces) == BURST, "one trace per message, none shared"
    for message_id in burst.ids:
        spans = burst.trace_of(message_id)
        producer = burst.producer(message_id)
        server = one(spans, kind="SERVER")
        consumer = one(spans, kind="CONSUMER")
        provider = one(
            spans, kind="CLIENT", parent_span_id=consumer.span_id, name=WORKERS[consumer.service]
        )
        settle = one(spans, kind="CLIENT", name=f"settle {queue}")

        assert (server.service, server.name, server.parent_span_id) == (
            "limbo-api",
            "POST /v1/mail",
            "",
        ), "the HTTP request is the trace's root"
        assert server.attributes["http.route"] == "/v1/mail"

        assert (producer.service, producer.name) == ("limbo-api", f"create {queue}")
        assert producer.parent_span_id == server.span_id
        assert producer.attributes["messaging.system"] == "aws_sqs"
        assert producer.attributes["messaging.destination.name"] == queue
        assert producer.attributes["messaging.operation.name"] == "create"
        sqs_id = producer.attributes["messaging.message.id"]
        assert sqs_id

        assert consumer.service in WORKERS
        assert consumer.name == f"process {queue}"
        assert consumer.parent_span_id == producer.span_id, "the queue hop keeps the trace"
        assert (producer.trace_id, producer.span_id) in consumer.links, "and links to it"
        assert consumer.attributes["messaging.system"] == "aws_sqs"
        assert consumer.attributes["messaging.destination.name"] == queue
        assert consumer.attributes["messaging.operation.name"] == "process"
        assert consumer.attributes["messaging.message.id"] == sqs_id
        assert consumer.attributes["limbo.message.id"] == message_id
        assert consumer.start_ns >= producer.start_ns

        assert provider.service == consumer.service
        assert consumer.start_ns <= provider.start_ns <= provider.end_ns <= consumer.end_ns
        assert provider.attributes["server.address"]
        assert settle.parent_span_id == consumer.span_id and settle.service == consumer.service
        assert settle.attributes["messaging.operation.type"] == "settle"
        assert provider.end_ns <= settle.start_ns, "deleted only after the provider accepted"

        assert {s.service for s in spans} == {"limbo-api", consumer.service}
        assert all(s.status != "ERROR" for s in spans)


def test_the_consumer_also_links_to_the_receive_that_fetched_it(burst: Burst) -> None:
    everything = burst.receiver.spans()
    for message_id in burst.ids:
        consumer = one(burst.trace_of(message_id), kind="CONSUMER")
        [(trace_id, span_id)] = [
            link for link in consumer.links if link[1] != burst.producer(message_id).span_id
        ]
        receive = one(everything, trace_id=trace_id, span_id=span_id)
        assert (receive.name, receive.kind, receive.service) == (
            f"receive {burst.queue}",
            "CLIENT",
            consumer.service,
        )
        assert receive.attributes["messaging.operation.name"] == "receive"
        assert receive.attributes["messaging.batch.message_count"] >= 1


def test_batch_sends_link_to_the_producer_span_of_every_message_they_carry(
    burst: Burst,
) -> None:
    batches = [
        s for s in burst.receiver.spans() if s.kind == "CLIENT" and s.name == f"send {burst.queue}"
    ]
    producers = {(p.trace_id, p.span_id) for p in map(burst.producer, burst.ids)}
    linked: list[tuple[str, str]] = []
    for batch in batches:
        assert batch.service == "limbo-api"
        assert batch.parent_span_id == "", "a batch belongs to no single request's trace"
        assert batch.trace_id not in {trace for trace, _ in producers}
        assert batch.attributes["messaging.system"] == "aws_sqs"
        assert batch.attributes["messaging.destination.name"] == burst.queue
        assert batch.attributes["messaging.operation.name"] == "send"
        assert batch.attributes["messaging.batch.message_count"] == len(batch.links)
        linked.extend(batch.links)
    assert sorted(linked) == sorted(producers), "each message in exactly one batch"
    assert max(b.attributes["messaging.batch.message_count"] for b in batches) > 1, (
        "the burst shared SendMessageBatch calls"
    )


def test_log_lines_carry_the_ids_of_the_span_they_were_written_in(burst: Burst) -> None:
    lines = [json.loads(line) for line in burst.limbo.log_text().splitlines() if line.strip()]
    for message_id in burst.ids:
        spans = burst.trace_of(message_id)
        server, consumer = one(spans, kind="SERVER"), one(spans, kind="CONSUMER")
        mine = [line for line in lines if line.get("message_id") == message_id]
        [queued] = [line for line in mine if line["event"] == "queued"]
        assert (queued["trace_id"], queued["span_id"]) == (server.trace_id, server.span_id)
        [sent] = [line for line in mine if line["event"] == "sent"]
        assert (sent["trace_id"], sent["span_id"]) == (consumer.trace_id, consumer.span_id)
        assert sent["provider"] == consumer.attributes["limbo.provider"]


def test_probes_and_scrapes_make_no_traces(burst: Burst) -> None:
    # Startup waited on /health; Kubernetes asks every few seconds: no trace each time.
    names = {s.name for s in burst.receiver.spans()}
    assert not {n for n in names if n.split(" ")[-1] in ("/health", "/ready", "/metrics")}
    assert not {n for n in names if n.endswith((" http send", " http receive"))}, (
        "ASGI's per-event spans add nothing to a JSON API and cost per request"
    )


def test_spans_still_buffered_at_sigterm_are_exported(
    limbo: Limbo,
    tmp_path: Path,
) -> None:
    receiver = OtlpReceiver().start()
    sink_process, sink = start_sink(tmp_path)
    try:
        # A minute between exports: nothing leaves the processes unless shutdown flushes it.
        slow = {
            "OTEL_EXPORTER_OTLP_ENDPOINT": receiver.endpoint,
            "OTEL_BSP_SCHEDULE_DELAY": "60000",
        }
        api_process, api = limbo.api(**slow)
        worker_process, _ = limbo.mailgun_worker(sink, **slow)
        [response] = post_burst(
            api,
            [{"from": "a@example.com", "to": ["b@example.com"], "subject": "late", "message": "x"}],
        )
        message_id = response.json()["id"]
        wait_for(lambda: sink_messages(sink), what="delivered")
        wait_for(lambda: '"event": "sent"' in limbo.log_text(), what="sent logged")
        assert receiver.spans() == [], "spans were buffered, not yet exported"

        worker_process.signal(signal.SIGTERM)
        assert worker_process.popen is not None and worker_process.popen.wait(30) == 0
        consumer = one(receiver.spans(), kind="CONSUMER")
        assert consumer.attributes["limbo.message.id"] == message_id

        api_process.signal(signal.SIGTERM)
        assert api_process.popen is not None and api_process.popen.wait(30) == 0
        producer = one(receiver.spans(), kind="PRODUCER")
        assert consumer.parent_span_id == producer.span_id
        assert one(receiver.spans(), kind="SERVER").trace_id == consumer.trace_id
    finally:
        sink_process.stop()
        receiver.stop()
