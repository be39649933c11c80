"""A CI-sized check of the benchmark's measuring instruments (a few seconds, no timing).

The counting proxy must count every AWS request by its action, whichever protocol the
client speaks, and a small run of limbo through it must show the batching the figures
in the README rely on.
"""

from __future__ import annotations

import sys
import time
import uuid
from collections.abc import Iterator
from pathlib import Path

import pytest

from limbo_devtools.local_aws import provision
from limbo_devtools.processes import Process, free_port
from limbo_shared.aws import new_session

from ..conftest import Limbo
from ..http_client import HTTP
from .conftest import BENCH


@pytest.fixture
def proxy(moto_endpoint: str) -> Iterator[str]:
    port = free_port()
    process = Process(
        "proxy",
        [
            sys.executable,
            str(BENCH / "limbo_bench" / "proxy.py"),
            "--port",
            str(port),
            "--upstream",
            moto_endpoint,
        ],
        health_url=f"http://127.0.0.1:{port}/__bench/counts",
    ).start()
    yield f"http://127.0.0.1:{port}"
    process.stop()


def counts(proxy: str) -> dict[str, int]:
    return dict(HTTP.get(f"{proxy}/__bench/counts", timeout=5).json())


def test_action_of_reads_each_protocol() -> None:
    from limbo_bench.proxy import action_of

    assert action_of("POST", "/", {"x-amz-target": "AmazonSQS.SendMessageBatch"}, b"{}") == (
        "SendMessageBatch"
    )
    assert action_of("POST", "/", {}, b"Action=ReceiveMessage&Version=2012-11-05") == (
        "ReceiveMessage"
    )
    assert action_of("GET", "/?Action=ListQueues", {}, b"") == "ListQueues"
    assert action_of("POST", "/v2/email/outbound-emails", {}, b"{}") == "sesv2:SendEmail"


def test_proxy_counts_every_request_by_action(proxy: str) -> None:
    HTTP.post(f"{proxy}/__bench/reset", timeout=5)
    sqs = new_session().client("sqs", endpoint_url=proxy, region_name="us-east-1")
    url = sqs.create_queue(
        QueueName=f"c{uuid.uuid4().hex[:8]}.fifo", Attributes={"FifoQueue": "true"}
    )["QueueUrl"]
    for i in range(3):
        sqs.send_message(
            QueueUrl=url, MessageBody="x", MessageGroupId="g", MessageDeduplicationId=f"d{i}"
        )
    sqs.send_message_batch(
        QueueUrl=url,
        Entries=[
            {
                "Id": str(i),
                "MessageBody": "y",
                "MessageGroupId": "g",
                "MessageDeduplicationId": f"b{i}",
            }
            for i in range(10)
        ],
    )
    received = sqs.receive_message(QueueUrl=url, MaxNumberOfMessages=10)["Messages"]
    sqs.delete_message_batch(
        QueueUrl=url,
        Entries=[
            {"Id": str(i), "ReceiptHandle": m["ReceiptHandle"]} for i, m in enumerate(received)
        ],
    )
    # The query protocol, as older SDKs speak it.
    query = HTTP.post(
        proxy,
        data={"Action": "GetQueueUrl", "QueueName": url.rsplit("/", 1)[1], "Version": "2012-11-05"},
        timeout=5,
    )
    assert query.status_code == 200

    assert counts(proxy) == {
        "CreateQueue": 1,
        "SendMessage": 3,
        "SendMessageBatch": 1,
        "ReceiveMessage": 1,
        "DeleteMessageBatch": 1,
        "GetQueueUrl": 1,
    }


def test_proxy_reports_each_actions_upstream_time_and_its_tail(proxy: str) -> None:
    HTTP.post(f"{proxy}/__bench/reset", timeout=5)
    sqs = new_session().client("sqs", endpoint_url=proxy, region_name="us-east-1")
    url = sqs.create_queue(QueueName=f"t{uuid.uuid4().hex[:8]}")["QueueUrl"]
    for _ in range(3):
        sqs.send_message(QueueUrl=url, MessageBody="x")
    sqs.purge_queue(QueueUrl=url)
    # A long poll on an empty queue: the emulator holds it for the whole second.
    sqs.receive_message(QueueUrl=url, WaitTimeSeconds=1)

    tail = HTTP.get(f"{proxy}/__bench/tail", timeout=5).json()
    mean = HTTP.get(f"{proxy}/__bench/latency", timeout=5).json()

    assert tail["SendMessage"]["calls"] == 3
    sends = tail["SendMessage"]
    assert 0 < sends["p50"] <= sends["p99"] <= sends["max"]
    assert sends["p50"] <= mean["SendMessage"] * 3
    assert tail["ReceiveMessage"]["calls"] == 1
    assert tail["ReceiveMessage"]["max"] >= 1000 > tail["SendMessage"]["max"]
    HTTP.post(f"{proxy}/__bench/reset", timeout=5)
    assert HTTP.get(f"{proxy}/__bench/tail", timeout=5).json() == {}


def test_limbo_through_the_proxy_batches_deletes_and_never_sends_singly(
    proxy: str, sink: str, tmp_path: Path
) -> None:
    aws = provision(proxy, queue_name=f"b{uuid.uuid4().hex[:8]}.fifo")
    logs = tmp_path / "logs"
    logs.mkdir()
    system = Limbo(aws, logs)
    try:
        _, api = system.api()
        HTTP.post(f"{proxy}/__bench/reset", timeout=5)
        for i in range(20):
            mail = {
                "from": "limbo@example.com",
                "to": [f"to{i}@example.com"],
                "subject": f"bench smoke {i}",
                "message": "m",
            }
            assert HTTP.post(f"{api}/v1/mail", json=mail, timeout=10).status_code == 200
        # The worker starts with all 20 waiting, so it receives them ten at a time and
        # their deletes become due together.
        system.mailgun_worker(sink, CONCURRENCY="20")
        deadline = time.monotonic() + 30
        while HTTP.get(f"{sink}/messages", params={"count_only": 1}).json()["count"] < 20:
            assert time.monotonic() < deadline, "not all 20 were delivered"
            time.sleep(0.1)
    finally:
        system.stop()
    seen = counts(proxy)
    # Sequential POSTs each leave at once (no linger): one SendMessageBatch apiece.
    assert seen.get("SendMessageBatch") == 20
    assert "SendMessage" not in seen and "DeleteMessage" not in seen
    # One DeleteMessageBatch per message would be 20; the stop sends the lingering ones.
    assert 1 <= seen["DeleteMessageBatch"] <= 10, seen
    assert seen["ReceiveMessage"] >= 1


def test_cpu_ns_counts_every_live_threads_cpu() -> None:
    import os
    import threading

    from limbo_bench.procstat import cpu_ns

    def spin(seconds: float) -> None:
        end = time.thread_time() + seconds
        while time.thread_time() < end:
            pass

    spun, leave = threading.Event(), threading.Event()

    def other() -> None:
        spin(0.2)
        spun.set()
        leave.wait()

    before = cpu_ns(os.getpid())
    thread = threading.Thread(target=other)
    thread.start()
    spin(0.2)
    spun.wait()
    after = cpu_ns(os.getpid())
    leave.set()
    thread.join()
    # Both threads' 0.2 s of CPU, not the main thread's alone.
    assert after - before >= 0.38e9
