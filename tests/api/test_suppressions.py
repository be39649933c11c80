"""The suppression list's routes and the check before a send, in-process against moto."""

from __future__ import annotations

from typing import Any

from starlette.testclient import TestClient

from .conftest import ALICE_KEY, BOB_KEY, VALID, ApiFactory, bearer

ALICE = bearer(ALICE_KEY)
BOB = bearer(BOB_KEY)


def add(api: TestClient, address: str, reason: str = "asked us to stop", **headers: Any) -> Any:
    return api.post(
        "/v1/suppressions", json={"address": address, "reason": reason}, headers=headers or ALICE
    )


def test_a_manual_entry_can_be_read_listed_and_removed(tracked_api: TestClient) -> None:
    created = add(tracked_api, "Someone <Someone@Example.com>")
    assert created.status_code == 201
    entry = created.json()
    assert (entry["address"], entry["reason"], entry["source"], entry["detail"]) == (
        "someone@example.com",
        "manual",
        "api",
        "asked us to stop",
    )
    assert tracked_api.get("/v1/suppressions/SOMEONE@example.com", headers=ALICE).json() == entry
    listed = tracked_api.get("/v1/suppressions", headers=ALICE).json()
    assert listed == {"suppressions": [entry], "cursor": None}
    removed = tracked_api.delete("/v1/suppressions/someone@example.com", headers=ALICE)
    assert removed.json() == {"Message": "removed", "address": "someone@example.com"}
    gone = tracked_api.get("/v1/suppressions/someone@example.com", headers=ALICE)
    assert gone.status_code == 404 and gone.json()["Message"] == "not found"
    assert (
        tracked_api.delete("/v1/suppressions/someone@example.com", headers=ALICE).status_code == 404
    )


def test_the_list_is_paginated_in_address_order(tracked_api: TestClient) -> None:
    addresses = [f"user{i}@example.com" for i in range(5)]
    for address in reversed(addresses):
        assert add(tracked_api, address).status_code == 201
    seen: list[str] = []
    cursor: str | None = None
    pages = 0
    while True:
        params = {"limit": "2", **({"cursor": cursor} if cursor else {})}
        page = tracked_api.get("/v1/suppressions", params=params, headers=ALICE).json()
        seen += [entry["address"] for entry in page["suppressions"]]
        pages += 1
        cursor = page["cursor"]
        if cursor is None:
            break
    assert seen == addresses and pages == 3


def test_one_keys_list_is_invisible_to_another(tracked_api: TestClient) -> None:
    add(tracked_api, "private@example.com")
    assert tracked_api.get("/v1/suppressions", headers=BOB).json()["suppressions"] == []
    assert tracked_api.get("/v1/suppressions/private@example.com", headers=BOB).status_code == 404
    assert (
        tracked_api.delete("/v1/suppressions/private@example.com", headers=BOB).status_code == 404
    )
    assert tracked_api.get("/v1/suppressions/private@example.com", headers=ALICE).status_code == 200
    # Bob's mail to the address goes out: the list is Alice's.
    assert (
        tracked_api.post(
            "/v1/mail", json={**VALID, "to": ["private@example.com"]}, headers=BOB
        ).status_code
        == 200
    )


def test_bad_entries_limits_and_cursors_are_400_in_the_json_shape(tracked_api: TestClient) -> None:
    for body in (
        {"address": "not an address", "reason": "x"},
        {"address": "a@example.com"},
        {"address": "a@example.com", "reason": "line\nbreak"},
        {"address": "a@example.com", "reason": "x", "extra": 1},
    ):
        answer = tracked_api.post("/v1/suppressions", json=body, headers=ALICE)
        assert answer.status_code == 400, body
        assert set(answer.json()) == {"Message", "Problem"}
    assert tracked_api.get("/v1/suppressions?limit=0", headers=ALICE).status_code == 400
    assert tracked_api.get("/v1/suppressions?limit=101", headers=ALICE).status_code == 400
    assert tracked_api.get("/v1/suppressions?cursor=%%%", headers=ALICE).status_code == 400


def test_the_routes_need_an_api_key(tracked_api: TestClient) -> None:
    assert tracked_api.get("/v1/suppressions").status_code == 401
    assert (
        tracked_api.post(
            "/v1/suppressions", json={"address": "a@example.com", "reason": "x"}
        ).status_code
        == 401
    )


def test_a_send_leaves_suppressed_recipients_out_and_says_so(tracked_api: TestClient) -> None:
    add(tracked_api, "gone@example.com")
    mail = {
        **VALID,
        "to": ["Gone <GONE@example.com>", "here@example.com"],
        "cc": ["gone@example.com"],
    }
    answer = tracked_api.post("/v1/mail", json=mail, headers=ALICE)
    assert answer.status_code == 200
    assert answer.json()["suppressed"] == ["Gone <GONE@example.com>", "gone@example.com"]
    record = tracked_api.get(f"/v1/mail/{answer.json()['id']}", headers=ALICE).json()
    assert record["suppressed"] == answer.json()["suppressed"]
    assert record["recipients"] == 1


def test_a_send_to_only_suppressed_recipients_is_422_naming_them(tracked_api: TestClient) -> None:
    add(tracked_api, "gone@example.com")
    answer = tracked_api.post("/v1/mail", json={**VALID, "to": ["gone@example.com"]}, headers=ALICE)
    assert answer.status_code == 422
    assert answer.json()["Message"] == "not submitted"
    assert "gone@example.com" in answer.json()["Problem"]
    assert answer.json()["suppressed"] == ["gone@example.com"]


def test_with_the_check_disabled_suppressed_recipients_are_sent_to(
    tracked_api_factory: ApiFactory,
) -> None:
    api = tracked_api_factory(suppression="disabled")
    add(api, "gone@example.com")
    answer = api.post("/v1/mail", json={**VALID, "to": ["gone@example.com"]}, headers=ALICE)
    assert answer.status_code == 200 and "suppressed" not in answer.json()
