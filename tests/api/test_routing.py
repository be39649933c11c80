"""Every path answers a method it lacks with 405 and an Allow naming exactly its methods."""

from __future__ import annotations

import re

import pytest
from starlette.testclient import TestClient

from .conftest import ALICE_KEY, bearer

ALICE = bearer(ALICE_KEY)
_METHODS = {"get", "put", "post", "delete", "patch"}


def _documented(api: TestClient) -> dict[str, set[str]]:
    paths = api.get("/openapi.json").json()["paths"]
    return {path: {m.upper() for m in item if m in _METHODS} for path, item in paths.items()}


@pytest.mark.parametrize("method", ["OPTIONS", "PUT", "PATCH"])
def test_an_unsupported_method_is_405_listing_the_documented_ones(
    tracked_api: TestClient, method: str
) -> None:
    documented = _documented(tracked_api)
    assert "/v1/suppressions/{address}" in documented
    for path, methods in documented.items():
        if method in methods:
            continue
        concrete = re.sub(r"\{[^}]+\}", "x@example.com", path)
        answer = tracked_api.request(method, concrete, headers=ALICE)
        assert answer.status_code == 405, path
        allowed = {m.strip() for m in answer.headers["allow"].split(",")}
        # HEAD comes with GET (Starlette serves it); nothing else beyond the document.
        assert allowed == methods | ({"HEAD"} if "GET" in methods else set()), path
        assert set(answer.json()) == {"Message", "Problem"}
