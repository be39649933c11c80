"""call_aws: a boto3 call off the event loop, with one exception for every failure; a
client built on first use."""

from __future__ import annotations

import threading
import time
from concurrent.futures import ThreadPoolExecutor

import pytest
from botocore.stub import Stubber

from limbo_shared.aws import (
    AwsError,
    OnFirstUse,
    call_aws,
    forget_botocore_data,
    make_client,
    new_session,
)

# Nothing listens on port 9 of localhost: the connection is refused at once.
UNREACHABLE = "http://127.0.0.1:9"


@pytest.fixture
def executor() -> ThreadPoolExecutor:
    return ThreadPoolExecutor(max_workers=1, thread_name_prefix="aws-test")


async def test_the_call_runs_on_the_executor_and_answers_its_result(
    executor: ThreadPoolExecutor,
) -> None:
    def where(**kwargs: object) -> tuple[str, dict[str, object]]:
        return threading.current_thread().name, kwargs

    name, kwargs = await call_aws(executor, lambda: where(QueueUrl="q"))
    assert name.startswith("aws-test")
    assert kwargs == {"QueueUrl": "q"}


async def test_an_aws_refusal_carries_code_status_and_item(executor: ThreadPoolExecutor) -> None:
    client = make_client("dynamodb", region="eu-west-1", endpoint_url=UNREACHABLE)
    with Stubber(client) as stub:
        stub.add_client_error(
            "put_item",
            service_error_code="ConditionalCheckFailedException",
            service_message="The conditional request failed",
            http_status_code=400,
            modeled_fields={"Item": {"id": {"S": "m-1"}}},
        )
        with pytest.raises(AwsError) as caught:
            await call_aws(executor, lambda: client.put_item(TableName="t", Item={}))
    error = caught.value
    assert str(error) == "ConditionalCheckFailedException: The conditional request failed"
    assert error.code == "ConditionalCheckFailedException"
    assert (error.status, error.answered) == (400, True)
    assert error.item == {"id": {"S": "m-1"}}


async def test_an_unreachable_endpoint_is_an_error_without_a_code(
    executor: ThreadPoolExecutor,
) -> None:
    client = make_client("sqs", region="eu-west-1", endpoint_url=UNREACHABLE, max_attempts=1)
    with pytest.raises(AwsError) as caught:
        await call_aws(executor, client.list_queues)
    assert caught.value.code is None
    assert not caught.value.answered
    assert "127.0.0.1:9" in str(caught.value)


def test_a_client_on_first_use_is_built_once_and_only_when_needed() -> None:
    built: list[object] = []

    def build() -> object:
        time.sleep(0.05)  # long enough for every thread to arrive while it is built
        built.append(object())
        return built[-1]

    lazy = OnFirstUse(build)
    assert not lazy.built and built == []
    with ThreadPoolExecutor(8) as pool:
        clients = list(pool.map(lambda _: lazy.get(), range(8)))
    assert len(built) == 1 and lazy.built
    assert all(client is built[0] for client in clients)


def test_sessions_are_separate_but_read_botocore_data_once_per_process() -> None:
    first, second = new_session(), new_session()
    assert first is not second
    assert first._session is not second._session  # credentials and handlers stay per session
    loader = first._session.get_component("data_loader")
    assert second._session.get_component("data_loader") is loader
    before = len(loader.search_paths)
    for _ in range(3):
        new_session()
    # boto3 adds its data folder to each new session's loader: the shared one does not grow.
    assert len(loader.search_paths) == before
    # boto3's own data (resource models) is still found.
    assert second.get_available_resources()
    # Both sessions' clients are built from the one parse of the model.
    assert first._session.get_service_data("sqs") is second._session.get_service_data("sqs")


def test_a_started_service_lets_go_of_the_shared_data_and_later_sessions_start_afresh() -> None:
    before = new_session()._session.get_component("data_loader")
    forget_botocore_data()
    after = new_session()._session.get_component("data_loader")
    assert after is not before
    assert new_session()._session.get_component("data_loader") is after
