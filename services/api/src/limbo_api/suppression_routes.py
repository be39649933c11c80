"""``/v1/suppressions``: the caller's suppression list, to read, add to and remove from.

Every entry belongs to the API key that asks; another key's entries answer 404 like
unknown ones. Addresses are matched case-insensitively, with or without a display name.
"""

from __future__ import annotations

import json
from typing import Annotated, Any

from pydantic import BaseModel, ConfigDict, Field, StringConstraints, ValidationError
from starlette.requests import Request
from starlette.responses import JSONResponse, Response
from starlette.routing import Route

from limbo_shared.http import problem
from limbo_shared.logs import get_logger
from limbo_shared.schema import Address
from limbo_shared.store import StoreUnavailable, Suppressions, normalize_address

from .access import owner_of

__all__ = ["MAX_PAGE", "suppression_routes"]

log = get_logger("limbo.api")

MAX_PAGE = 100
_DEFAULT_PAGE = 50
_TRACKING_OFF = "the suppression list needs the status store (STATUS_TABLE is unset)"


class ManualSuppression(BaseModel):
    model_config = ConfigDict(extra="forbid", strict=True)

    address: Address
    reason: Annotated[
        str, StringConstraints(strict=True, min_length=1, max_length=500, pattern=r"^[^\r\n\x00]*$")
    ] = Field(description="Why, in the operator's words")


def _unavailable() -> Response:
    return problem(
        503,
        "the status store is unavailable; retry later",
        headers={"Retry-After": "5"},
        message="unavailable",
    )


def _describe(error: ValidationError) -> str:
    item = error.errors()[0]
    where = ".".join(str(part) for part in item["loc"]) or "body"
    return f"{where}: {str(item['msg']).removeprefix('Value error, ')}"


def suppression_routes(store: Suppressions | None) -> list[Route]:
    async def listing(request: Request) -> Response:
        if store is None:
            return problem(501, _TRACKING_OFF, message="refused")
        raw_limit = request.query_params.get("limit", str(_DEFAULT_PAGE))
        if not raw_limit.isdigit() or not 1 <= int(raw_limit) <= MAX_PAGE:
            return problem(400, f"limit must be an integer from 1 to {MAX_PAGE}", message="refused")
        try:
            page = await store.page(
                owner_of(request), limit=int(raw_limit), cursor=request.query_params.get("cursor")
            )
        except ValueError as error:
            return problem(400, str(error), message="refused")
        except StoreUnavailable as error:
            log.warning("suppression listing failed", error=str(error))
            return _unavailable()
        return JSONResponse(
            {"suppressions": [entry.public() for entry in page.entries], "cursor": page.cursor}
        )

    async def add(request: Request) -> Response:
        if store is None:
            return problem(501, _TRACKING_OFF, message="refused")
        try:
            body: Any = json.loads(await request.body())
            entry = ManualSuppression.model_validate(body)
        except ValueError as error:
            text = _describe(error) if isinstance(error, ValidationError) else "body is not JSON"
            return problem(400, text, message="refused")
        owner = owner_of(request)
        try:
            await store.add(
                owner, entry.address, reason="manual", source="api", detail=entry.reason
            )
            added = await store.get(owner, entry.address)
        except StoreUnavailable as error:
            log.warning("suppression not added", error=str(error))
            return _unavailable()
        assert added is not None
        return JSONResponse(added.public(), status_code=201)

    async def read(request: Request) -> Response:
        if store is None:
            return problem(501, _TRACKING_OFF, message="not found")
        address = normalize_address(request.path_params["address"])
        try:
            entry = await store.get(owner_of(request), address)
        except StoreUnavailable as error:
            log.warning("suppression lookup failed", error=str(error))
            return _unavailable()
        if entry is None:
            return problem(
                404, "this address is not suppressed for this API key", message="not found"
            )
        return JSONResponse(entry.public())

    async def remove(request: Request) -> Response:
        if store is None:
            return problem(501, _TRACKING_OFF, message="not found")
        address = normalize_address(request.path_params["address"])
        try:
            removed = await store.remove(owner_of(request), address)
        except StoreUnavailable as error:
            log.warning("suppression not removed", error=str(error))
            return _unavailable()
        if not removed:
            return problem(
                404, "this address is not suppressed for this API key", message="not found"
            )
        return JSONResponse({"Message": "removed", "address": address})

    return [
        Route("/v1/suppressions", listing, methods=["GET"]),
        Route("/v1/suppressions", add, methods=["POST"]),
        Route("/v1/suppressions/{address}", read, methods=["GET"]),
        Route("/v1/suppressions/{address}", remove, methods=["DELETE"]),
    ]
