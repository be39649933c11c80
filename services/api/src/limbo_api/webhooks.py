"""``/v1/webhooks``: an API key's webhook endpoints (register, list, show, delete, rotate).

The signing secret is in the answer to POST and to rotate, and nowhere else. With
tracking off (no STATUS_TABLE) there is no registry: every route answers 501.
"""

from __future__ import annotations

import re
from collections.abc import Awaitable, Callable

from pydantic import BaseModel, ConfigDict, Field, ValidationError, field_validator
from starlette.requests import ClientDisconnect, Request
from starlette.responses import JSONResponse, Response
from starlette.routing import Route

from limbo_shared.errors import describe_validation_error
from limbo_shared.http import problem
from limbo_shared.logs import get_logger
from limbo_shared.store import ConditionFailed, StoreUnavailable
from limbo_shared.webhooks import (
    MAX_ENDPOINTS,
    Destinations,
    EndpointRegistry,
    EventType,
    Refused,
    TooManyEndpoints,
)
from limbo_shared.webhooks.destinations import MAX_URL_LENGTH, URL_PATTERN

from .access import owner_of
from .bodies import read_small_body
from .routing import path_route
from .validation import InvalidMail, parse_json_object

__all__ = ["webhook_routes"]

log = get_logger("limbo.api")

MAX_BODY = 16_384
_ENDPOINT_ID = re.compile(r"^ep_[0-9a-f]{32}$")
# What a route about one endpoint does once its id is well-formed: None when this API
# key has no such endpoint.
_EndpointAction = Callable[[EndpointRegistry, str, str], Awaitable[Response | None]]
_URL = re.compile(URL_PATTERN)
_TRACKING_OFF = "webhooks are not available: message tracking is off (STATUS_TABLE is unset)"


class Registration(BaseModel):
    model_config = ConfigDict(extra="forbid", strict=True)

    # The schema's pattern too: a URL is printable ASCII (RFC 3986 percent-encodes the
    # rest), so its length is the same counted in characters or in UTF-16 units.
    url: str = Field(min_length=1, max_length=MAX_URL_LENGTH)

    @field_validator("url")
    @classmethod
    def _ascii(cls, value: str) -> str:
        if not _URL.fullmatch(value):
            raise ValueError("must be printable ASCII without spaces (percent-encode the rest)")
        return value

    events: list[EventType] = Field(min_length=1, max_length=len(EventType))

    @field_validator("events", mode="before")
    @classmethod
    def _known(cls, value: object) -> object:
        if isinstance(value, list):
            known_values = {e.value for e in EventType}
            unknown = [v for v in value if not isinstance(v, str) or v not in known_values]
            if unknown:
                known = ", ".join(e.value for e in EventType)
                raise ValueError(f"{unknown[0]!r} is not an event type (one of {known})")
            if len(set(value)) != len(value):
                raise ValueError("lists an event type twice")
            return [EventType(v) for v in value]
        return value


def _unavailable() -> Response:
    return problem(
        503,
        "the status store is unavailable; retry later",
        headers={"Retry-After": "5"},
        message="unavailable",
    )


def webhook_routes(
    registry: EndpointRegistry | None, destinations: Destinations, *, client_timeout: float
) -> list[Route]:
    not_found_text = "no webhook endpoint {!r} for this API key"

    def _off() -> Response:
        return problem(501, _TRACKING_OFF, message="not available")

    async def register(request: Request) -> Response:
        if registry is None:
            return _off()
        try:
            body = await read_small_body(request, MAX_BODY, client_timeout)
            data = parse_json_object(body)
            registration = Registration.model_validate(data)
        except InvalidMail as error:
            return problem(error.status, error.problem, message="not registered")
        except ValidationError as error:
            return problem(422, describe_validation_error(error), message="not registered")
        except TimeoutError:
            return problem(408, "the body did not arrive in time", message="not registered")
        except ClientDisconnect:
            return problem(400, "the client went away", message="not registered")
        try:
            destinations.check_url(registration.url)
        except Refused as refused:
            return problem(422, f"url: {refused}", message="not registered")
        try:
            endpoint = await registry.create(
                owner_of(request), registration.url, tuple(registration.events)
            )
        except TooManyEndpoints:
            return problem(
                409, f"this API key has {MAX_ENDPOINTS} endpoints already", message="not registered"
            )
        except (StoreUnavailable, ConditionFailed) as error:
            log.warning("webhook endpoint not registered", error=str(error))
            return _unavailable()
        log.info("webhook endpoint registered", endpoint=endpoint.id)
        return JSONResponse({**endpoint.public(), "secret": endpoint.secret}, status_code=201)

    async def listing(request: Request) -> Response:
        if registry is None:
            return _off()
        try:
            endpoints = await registry.of_owner(owner_of(request))
        except StoreUnavailable:
            return _unavailable()
        return JSONResponse({"data": [endpoint.public() for endpoint in endpoints]})

    def about_one(action: _EndpointAction) -> Callable[[Request], Awaitable[Response]]:
        """A route about one endpoint: 501 with tracking off, the same 404 for a malformed
        id as for one that is not this key's (``action`` answers None), else ``action``'s."""

        async def route(request: Request) -> Response:
            if registry is None:
                return _off()
            endpoint_id = request.path_params["endpoint_id"]
            if _ENDPOINT_ID.match(endpoint_id):
                answer = await action(registry, owner_of(request), endpoint_id)
                if answer is not None:
                    return answer
            return problem(404, not_found_text.format(endpoint_id), message="not found")

        return route

    async def show_one(registry: EndpointRegistry, owner: str, endpoint_id: str) -> Response | None:
        try:
            endpoint = await registry.get(owner, endpoint_id)
            if endpoint is None:
                return None
            attempts = await registry.attempts(endpoint_id)
        except (StoreUnavailable, ValueError, KeyError):
            return _unavailable()
        return JSONResponse({**endpoint.public(), **attempts.public()})

    async def delete_one(
        registry: EndpointRegistry, owner: str, endpoint_id: str
    ) -> Response | None:
        try:
            found = await registry.delete(owner, endpoint_id)
        except (StoreUnavailable, ConditionFailed):
            return _unavailable()
        if not found:
            return None
        log.info("webhook endpoint deleted", endpoint=endpoint_id)
        return Response(status_code=204)

    async def rotate_one(
        registry: EndpointRegistry, owner: str, endpoint_id: str
    ) -> Response | None:
        try:
            endpoint = await registry.rotate(owner, endpoint_id)
        except (StoreUnavailable, ConditionFailed):
            return _unavailable()
        if endpoint is None:
            return None
        log.info("webhook secret rotated", endpoint=endpoint_id)
        return JSONResponse({**endpoint.public(), "secret": endpoint.secret})

    show, delete, rotate = about_one(show_one), about_one(delete_one), about_one(rotate_one)

    return [
        path_route("/v1/webhooks", {"GET": listing, "POST": register}),
        path_route("/v1/webhooks/{endpoint_id}", {"GET": show, "DELETE": delete}),
        path_route("/v1/webhooks/{endpoint_id}/rotate", {"POST": rotate}),
    ]
