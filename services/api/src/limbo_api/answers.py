"""The HTTP answer to each outcome of the ledger (the API's side of the status store).

The ledger says what happened (a replay, a conflict, the store down); this module
alone says it in HTTP, so the status codes and texts of both routes live in one table.
"""

from __future__ import annotations

from starlette.responses import JSONResponse, Response

from limbo_shared.http import problem

from .ledger import IDEMPOTENCY_HEADER, MAX_IDEMPOTENCY_KEY, Canceled, Refusal, Replay, TooLate

__all__ = ["cancel_answer", "lookup_refused", "store_unavailable", "submission_refused"]

_TRACKING_OFF = "message tracking is off on this deployment (STATUS_TABLE is unset)"


def store_unavailable(message: str = "not submitted") -> JSONResponse:
    return problem(
        503,
        "the status store is unavailable; retry later",
        headers={"Retry-After": "5"},
        message=message,
    )


def submission_refused(outcome: Replay | Refusal) -> Response:
    """POST /v1/mail's answer when the ledger did not hand out a ticket."""
    match outcome:
        case Replay(message_id):
            return JSONResponse(
                {"Message": "submitted", "id": message_id},
                headers={"Idempotent-Replayed": "true"},
            )
        case Refusal.BAD_KEY:
            return problem(
                400, f"{IDEMPOTENCY_HEADER} must be 1 to {MAX_IDEMPOTENCY_KEY} characters"
            )
        case Refusal.TRACKING_OFF:
            return problem(501, f"{IDEMPOTENCY_HEADER} cannot be honoured: {_TRACKING_OFF}")
        case Refusal.UNAVAILABLE:
            return store_unavailable()
        case Refusal.CONFLICT:
            return problem(409, f"{IDEMPOTENCY_HEADER} was already used with a different body")
        case Refusal.IN_PROGRESS:
            return problem(
                409,
                f"a request with this {IDEMPOTENCY_HEADER} is still being processed; retry later",
                headers={"Retry-After": "1"},
            )
    raise AssertionError(f"no answer for {outcome!r} to a submission")


def lookup_refused(refusal: Refusal, message_id: str) -> Response:
    """GET /v1/mail/{id}'s answer when there is no record to show."""
    return _no_record(refusal, message_id, "status lookups are not available", "not found")


def cancel_answer(outcome: Canceled | TooLate | Refusal, message_id: str) -> Response:
    """DELETE /v1/mail/{id}'s answer."""
    match outcome:
        case Canceled(canceled_id):
            return JSONResponse({"Message": "canceled", "id": canceled_id})
        case TooLate(status):
            return problem(
                409,
                f"message {message_id!r} is {status}: only a scheduled message can be canceled",
                message="not canceled",
            )
    return _no_record(outcome, message_id, "cancelling is not available", "not canceled")


def _no_record(refusal: Refusal, message_id: str, off: str, off_message: str) -> Response:
    """Why a route about one message has no record to act on (``off``: what tracking
    off makes unavailable)."""
    match refusal:
        case Refusal.TRACKING_OFF:
            return problem(501, f"{off}: {_TRACKING_OFF}", message=off_message)
        case Refusal.NOT_FOUND:
            return problem(404, f"no message {message_id!r} for this API key", message="not found")
        case Refusal.UNAVAILABLE:
            return store_unavailable(message="unavailable")
    raise AssertionError(f"no answer for {refusal!r} about message {message_id!r}")
