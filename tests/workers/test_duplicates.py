"""Sent once: a worker killed between the provider's answer and the delete, or inside a send.

The first worker reaches moto through a proxy that holds every DeleteMessageBatch, so it
is killed exactly after the provider accepted and before any delete, with no hook in
the worker. A second worker then receives the same messages after the visibility timeout.
"""

from __future__ import annotations

from typing import Any

from limbo_devtools.local_aws import LocalAws

from ..conftest import Limbo, sink_messages
from ..holding_proxy import HoldingProxy
from .test_runtime import queue_depth, wait_for
from .test_tracking import outcome_count, status, status_becomes, submit

DELETE = "AmazonSQS.DeleteMessageBatch"
RECEIVE = "AmazonSQS.ReceiveMessage"
MESSAGES = 10


def subjects(sink: str) -> list[str]:
    return sorted(m["fields"]["subject"][0] for m in sink_messages(sink))  # type: ignore[index]


def crash_after_sending(
    limbo: Limbo, aws: LocalAws, proxy: HoldingProxy, sink: str, *, tracking: bool
) -> tuple[str, list[str]]:
    """Submit, let a worker send everything, SIGKILL it before any delete; answer the API."""
    env = {} if tracking else {"STATUS_TABLE": ""}
    _, api = limbo.api(**env)
    ids = [submit(api, f"m{i:02}") for i in range(MESSAGES)]
    proxy.hold(DELETE)
    doomed, _ = limbo.mailgun_worker(
        sink, AWS_ENDPOINT_URL=proxy.url, VISIBILITY_TIMEOUT="5", **env
    )
    wait_for(lambda: len(sink_messages(sink)) == MESSAGES and proxy.seen(DELETE) >= 1)
    if tracking:
        # The crash must come after `sent` was recorded: that is the window tested here.
        wait_for(lambda: all(status(api, i)["status"] == "sent" for i in ids))
    doomed.kill()
    assert queue_depth(aws) == MESSAGES, "no delete may have reached the queue"
    return api, ids


def test_a_worker_killed_before_its_delete_causes_no_second_send(
    tracked_limbo: Limbo, tracked_aws: LocalAws, holding_proxy: HoldingProxy, sink: str
) -> None:
    api, ids = crash_after_sending(tracked_limbo, tracked_aws, holding_proxy, sink, tracking=True)
    _, second = tracked_limbo.mailgun_worker(sink, VISIBILITY_TIMEOUT="5")
    wait_for(lambda: queue_depth(tracked_aws) == 0, timeout=30)
    assert subjects(sink) == [f"m{i:02}" for i in range(MESSAGES)], "each exactly once"
    assert outcome_count(second, "duplicate") == MESSAGES
    assert all(status(api, i)["attempts"] == 1 for i in ids)


def test_without_tracking_the_same_crash_sends_every_message_twice(
    tracked_limbo: Limbo, tracked_aws: LocalAws, holding_proxy: HoldingProxy, sink: str
) -> None:
    """The control: what the test above guards against does happen without the store."""
    crash_after_sending(tracked_limbo, tracked_aws, holding_proxy, sink, tracking=False)
    tracked_limbo.mailgun_worker(sink, VISIBILITY_TIMEOUT="5", STATUS_TABLE="")
    wait_for(lambda: queue_depth(tracked_aws) == 0, timeout=30)
    assert subjects(sink) == sorted([f"m{i:02}" for i in range(MESSAGES)] * 2)


def test_a_crash_inside_the_send_leaves_a_lease_that_expires(
    tracked_limbo: Limbo, tracked_aws: LocalAws, sink_factory: Any, holding_proxy: HoldingProxy
) -> None:
    # The hanging sink never answers in time, so the doomed worker is always mid-send.
    hanging, working = sink_factory(SINK_FAIL_SLOW="1.0", SINK_SLOW_SECONDS="30"), sink_factory()
    _, api = tracked_limbo.api()
    # The second worker is up before the crash, its receives held back until then: how
    # long a process takes to start on a loaded machine cannot eat into the lease.
    holding_proxy.hold(RECEIVE)
    _, second = tracked_limbo.mailgun_worker(
        working, AWS_ENDPOINT_URL=holding_proxy.url, VISIBILITY_TIMEOUT="5"
    )
    wait_for(lambda: holding_proxy.waiting(RECEIVE) >= 1)
    message_id = submit(api)
    # SEND_TIMEOUT=8 gives an 18 s lease (SEND_TIMEOUT + 10); the message is visible again
    # 5 s after the crash (VISIBILITY_TIMEOUT), and the second worker receives it then.
    doomed, _ = tracked_limbo.mailgun_worker(hanging, VISIBILITY_TIMEOUT="5", SEND_TIMEOUT="8")
    status_becomes(api, message_id, "sending", timeout=30)
    doomed.kill()
    holding_proxy.release(RECEIVE)
    record = status_becomes(api, message_id, "sent", timeout=60)
    # Seen while the dead worker's lease still ran: put back, then sent once it ran out.
    assert outcome_count(second, "deferred") >= 1
    assert record["attempts"] == 2
    assert len(sink_messages(working)) == 1
    # Deletes wait up to a second for company before they leave.
    wait_for(lambda: queue_depth(tracked_aws) == 0)
