"""The load: emails submitted through the API, with the queue's backlog kept bounded."""

from __future__ import annotations

import contextlib
import threading
import time
from collections.abc import Callable
from concurrent.futures import ThreadPoolExecutor
from typing import TYPE_CHECKING

import httpx

from limbo_shared.aws import new_session

from ..local_aws import LocalAws
from .config import ChaosConfig

if TYPE_CHECKING:
    from types_boto3_sqs import SQSClient
    from types_boto3_sqs.type_defs import MessageTypeDef

__all__ = ["Load"]


class Load:
    """Submits ``config.emails`` through the API at ``api`` and watches the queue."""

    def __init__(
        self, config: ChaosConfig, aws: LocalAws, api: str, say: Callable[[str], None]
    ) -> None:
        self.config = config
        self._aws = aws
        self._api = api
        self._say = say
        self._sqs: SQSClient = new_session().client(
            "sqs", endpoint_url=aws.endpoint, region_name=aws.region
        )

    def submit(self) -> tuple[set[str], int]:
        config = self.config
        accepted: set[str] = set()
        refused = 0
        lock = threading.Lock()
        next_index = iter(range(config.emails))
        depth = [0]
        done = threading.Event()

        def watch_depth() -> None:
            while not done.wait(0.5):
                # A missed sample only delays the next pause.
                with contextlib.suppress(Exception):
                    depth[0] = self.queue_depth()

        def client() -> None:
            nonlocal refused
            with httpx.Client(timeout=30) as http:
                while True:
                    with lock:
                        index = next(next_index, None)
                    if index is None:
                        return
                    while depth[0] > config.backlog:
                        time.sleep(0.2)
                    _, message_id = self._post(http, index)
                    with lock:
                        if message_id is not None:
                            accepted.add(message_id)
                        else:
                            refused += 1
                        total = len(accepted) + refused
                    if total % 1000 == 0:
                        self._say(f"{total} submitted, queue depth {depth[0]}")

        watcher = threading.Thread(target=watch_depth, daemon=True)
        watcher.start()
        with ThreadPoolExecutor(config.clients) as pool:
            for future in [pool.submit(client) for _ in range(config.clients)]:
                future.result()
        done.set()
        return accepted, refused

    def _post(self, http: httpx.Client, index: int) -> tuple[int, str | None]:
        mail = {
            "from": "chaos@example.com",
            "to": [f"r{index}@example.com"],
            "subject": f"chaos {index}",
            "message": f"fault-injection email {index}",
        }
        # A client retries a 503 as the API asks; only a final refusal counts as refused.
        for attempt in range(3):
            try:
                response = http.post(f"{self._api}/v1/mail", json=mail)
            except httpx.HTTPError:
                time.sleep(1)
                continue
            if response.status_code == 200:
                return 200, str(response.json()["id"])
            if response.status_code != 503 or attempt == 2:
                return response.status_code, None
            time.sleep(float(response.headers.get("Retry-After", "1")))
        return 0, None

    def queue_depth(self) -> int:
        attributes = self._sqs.get_queue_attributes(
            QueueUrl=self._aws.queue_url,
            AttributeNames=[
                "ApproximateNumberOfMessages",
                "ApproximateNumberOfMessagesNotVisible",
                "ApproximateNumberOfMessagesDelayed",
            ],
        )["Attributes"]
        return sum(int(value) for value in attributes.values())

    def wait_until_drained(self) -> int:
        deadline = time.monotonic() + self.config.settle_timeout
        empty_checks = 0
        depth = -1
        last_report = 0.0
        while time.monotonic() < deadline:
            depth = self.queue_depth()
            empty_checks = empty_checks + 1 if depth == 0 else 0
            if empty_checks >= 3:
                return 0
            if time.monotonic() - last_report > 10:
                self._say(f"queue depth {depth}")
                last_report = time.monotonic()
            time.sleep(0.5)
        return depth

    def dead_letters(self) -> list[MessageTypeDef]:
        """Everything in the dead-letter queue (consumed: the queue is this run's own)."""
        letters: list[MessageTypeDef] = []
        empty = 0
        while empty < 3:
            batch = self._sqs.receive_message(
                QueueUrl=self._aws.dead_letter_url,
                MaxNumberOfMessages=10,
                WaitTimeSeconds=0,
                VisibilityTimeout=60,
                MessageAttributeNames=["All"],
            ).get("Messages", [])
            if not batch:
                empty += 1
                continue
            empty = 0
            letters += batch
            self._sqs.delete_message_batch(
                QueueUrl=self._aws.dead_letter_url,
                Entries=[
                    {"Id": str(i), "ReceiptHandle": m["ReceiptHandle"]} for i, m in enumerate(batch)
                ],
            )
        return letters
