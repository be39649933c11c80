"""limbo-moto's WSGI layers around moto, in-process."""

from __future__ import annotations

from collections.abc import Callable, Iterable
from typing import Any

from limbo_devtools.emulator import DataJsonRetried


class FailingFirst:
    """A WSGI app answering 500 for its first ``failures`` calls, then 200."""

    def __init__(self, failures: int) -> None:
        self.failures = failures
        self.calls = 0

    def __call__(
        self, environ: dict[str, Any], start_response: Callable[..., Any]
    ) -> Iterable[bytes]:
        self.calls += 1
        if self.calls <= self.failures:
            start_response("500 INTERNAL SERVER ERROR", [("Content-Type", "text/html")])
            return [b"<h1>Internal Server Error</h1>"]
        start_response("200 OK", [("Content-Type", "application/json")])
        return [b'{"ses": {}}']


def call(app: DataJsonRetried, path: str) -> tuple[str, bytes]:
    answer: list[Any] = []
    body = b"".join(app({"PATH_INFO": path}, lambda *args: answer.extend(args)))
    return str(answer[0]), body


def test_a_data_json_that_failed_is_asked_again() -> None:
    inner = FailingFirst(failures=2)
    status, body = call(DataJsonRetried(inner), "/moto-api/data.json")
    assert (status, body, inner.calls) == ("200 OK", b'{"ses": {}}', 3)


def test_a_data_json_failing_every_time_answers_its_last_failure() -> None:
    inner = FailingFirst(failures=100)
    status, _ = call(DataJsonRetried(inner), "/moto-api/data.json")
    assert status.startswith("500") and inner.calls == DataJsonRetried.ATTEMPTS


def test_other_requests_are_never_repeated() -> None:
    inner = FailingFirst(failures=1)
    status, _ = call(DataJsonRetried(inner), "/")
    assert status.startswith("500") and inner.calls == 1
