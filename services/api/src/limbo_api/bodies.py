"""Reading the small JSON bodies of the management routes (webhooks, suppressions)."""

from __future__ import annotations

import asyncio
from typing import TypeVar

from pydantic import BaseModel, ValidationError
from starlette.requests import ClientDisconnect, Request
from starlette.responses import Response

from limbo_shared.errors import describe_validation_error
from limbo_shared.http import problem

from .validation import InvalidMail, parse_json_object

__all__ = ["read_model", "read_small_body"]

Model = TypeVar("Model", bound=BaseModel)


async def read_small_body(request: Request, limit: int, timeout: float) -> bytes:
    """The body, or InvalidMail (413) past ``limit`` bytes; TimeoutError past ``timeout``
    seconds and ClientDisconnect pass through for the route to answer."""
    chunks, size = [], 0
    async with asyncio.timeout(timeout):
        async for chunk in request.stream():
            size += len(chunk)
            if size > limit:
                raise InvalidMail(f"body is larger than {limit} bytes", status=413)
            chunks.append(chunk)
    return b"".join(chunks)


async def read_model(
    request: Request,
    model: type[Model],
    *,
    limit: int,
    timeout: float,
    message: str,
    invalid_status: int = 400,
) -> Model | Response:
    """The body as ``model``, or the answer that says why not (``message`` is its
    ``Message``; a body that parses but breaks the model's rules gets ``invalid_status``)."""
    try:
        body = await read_small_body(request, limit, timeout)
        return model.model_validate(parse_json_object(body))
    except InvalidMail as error:
        return problem(error.status, error.problem, message=message)
    except ValidationError as error:
        return problem(invalid_status, describe_validation_error(error), message=message)
    except TimeoutError:
        return problem(408, "the body did not arrive in time", message=message)
    except ClientDisconnect:
        return problem(400, "the client went away", message=message)
