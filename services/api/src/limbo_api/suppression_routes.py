"""``/v1/suppressions``: the caller's suppression list, to read, add to and remove from.

Every entry belongs to the API key that asks; another key's entries answer 404 like
unknown ones. Addresses are matched case-insensitively, with or without a display name.
"""

from __future__ import annotations

import re
from typing import Annotated

from pydantic import (
    AfterValidator,
    BaseModel,
    ConfigDict,
    Field,
    StringConstraints,
    ValidationError,
)
from starlette.requests import ClientDisconnect, Request
from starlette.responses import JSONResponse, Response
from starlette.routing import Route

from limbo_shared.errors import describe_validation_error
from limbo_shared.http import problem
from limbo_shared.logs import get_logger
from limbo_shared.schema import Address
from limbo_shared.store import StoreUnavailable, Suppressions, normalize_address

from .access import owner_of
from .bodies import read_small_body
from .routing import path_route
from .validation import InvalidMail, parse_json_object

__all__ = [
    "MAX_ADDRESS_PARAMETER",
    "MAX_PAGE",
    "MAX_REASON",
    "REASON_PATTERN",
    "suppression_routes",
]

log = get_logger("limbo.api")

MAX_PAGE = 100
MAX_REASON = 500
# The JSON Schema (ECMA-262) pattern of what _one_line enforces.
REASON_PATTERN = "^[^\\r\\n\\u0000]*$"
# Longer than any address can be (320 characters): such a path is never on the list.
MAX_ADDRESS_PARAMETER = 320
_DEFAULT_PAGE = 50
MAX_BODY = 4_096
_TRACKING_OFF = "the suppression list needs the status store (STATUS_TABLE is unset)"
_NOT_SUPPRESSED = "this address is not suppressed for this API key"


def _one_line(value: str) -> str:
    if re.search("[\r\n\x00]", value):
        raise ValueError("must be one line without NUL characters")
    return value


class ManualSuppression(BaseModel):
    model_config = ConfigDict(extra="forbid", strict=True)

    address: Address
    reason: Annotated[
        str,
        StringConstraints(strict=True, min_length=1, max_length=MAX_REASON),
        AfterValidator(_one_line),
    ] = Field(description="Why, in the operator's words")


def _unavailable() -> Response:
    return problem(
        503,
        "the status store is unavailable; retry later",
        headers={"Retry-After": "5"},
        message="unavailable",
    )


def suppression_routes(store: Suppressions | None, *, client_timeout: float) -> list[Route]:
    async def listing(request: Request) -> Response:
        if store is None:
            return problem(501, _TRACKING_OFF, message="refused")
        raw_limit = request.query_params.get("limit", str(_DEFAULT_PAGE))
        if not (raw_limit.isascii() and raw_limit.isdigit()) or not 1 <= int(raw_limit) <= MAX_PAGE:
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
            body = await read_small_body(request, MAX_BODY, client_timeout)
            entry = ManualSuppression.model_validate(parse_json_object(body))
        except InvalidMail as error:
            return problem(error.status, error.problem, message="refused")
        except ValidationError as error:
            return problem(400, describe_validation_error(error), message="refused")
        except TimeoutError:
            return problem(408, "the body did not arrive in time", message="refused")
        except ClientDisconnect:
            return problem(400, "the client went away", message="refused")
        owner = owner_of(request)
        try:
            await store.add(
                owner, entry.address, reason="manual", source="api", detail=entry.reason
            )
            added = await store.get(owner, entry.address)
        except StoreUnavailable as error:
            log.warning("suppression not added", error=str(error))
            return _unavailable()
        if added is None:  # removed again in between
            return _unavailable()
        return JSONResponse(added.public(), status_code=201)

    async def read(request: Request) -> Response:
        if store is None:
            return problem(501, _TRACKING_OFF, message="not found")
        address = normalize_address(request.path_params["address"])
        if len(address) > MAX_ADDRESS_PARAMETER:
            return problem(404, _NOT_SUPPRESSED, message="not found")
        try:
            entry = await store.get(owner_of(request), address)
        except StoreUnavailable as error:
            log.warning("suppression lookup failed", error=str(error))
            return _unavailable()
        if entry is None:
            return problem(404, _NOT_SUPPRESSED, message="not found")
        return JSONResponse(entry.public())

    async def remove(request: Request) -> Response:
        if store is None:
            return problem(501, _TRACKING_OFF, message="not found")
        address = normalize_address(request.path_params["address"])
        if len(address) > MAX_ADDRESS_PARAMETER:
            return problem(404, _NOT_SUPPRESSED, message="not found")
        try:
            removed = await store.remove(owner_of(request), address)
        except StoreUnavailable as error:
            log.warning("suppression not removed", error=str(error))
            return _unavailable()
        if not removed:
            return problem(404, _NOT_SUPPRESSED, message="not found")
        return JSONResponse({"Message": "removed", "address": address})

    return [
        path_route("/v1/suppressions", {"GET": listing, "POST": add}),
        # `path`: an address may hold a `/` (sent as %2F, decoded before routing).
        path_route("/v1/suppressions/{address:path}", {"GET": read, "DELETE": remove}),
    ]
