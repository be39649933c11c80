"""The OpenAPI document, generated from the same pydantic models that validate."""

from __future__ import annotations

from typing import Any

from limbo_shared.events import BounceType, DeliveryOutcome
from limbo_shared.schema import STREAMS, MailRequest, address_json_schema
from limbo_shared.store import CURSOR_PATTERN, MAX_CURSOR, Status

from .openapi_webhooks import webhook_paths, webhook_schemas, webhooks_sent
from .suppression_routes import MAX_ADDRESS_PARAMETER, MAX_PAGE, MAX_REASON, REASON_PATTERN
from .validation import MAX_BATCH

__all__ = ["openapi_document"]

_PROBLEM = {
    "type": "object",
    "required": ["Message", "Problem"],
    "properties": {
        "Message": {
            "type": "string",
            "enum": [
                "not submitted",
                "not registered",
                "not found",
                "not canceled",
                "not available",
                "refused",
                "unavailable",
            ],
            "description": "`not submitted` for POST /v1/mail, `not registered` for POST "
            "/v1/webhooks, else what was refused",
        },
        "Problem": {"type": "string", "description": "What is wrong, naming the field"},
    },
}


def _problem(description: str, retry_after: bool = False) -> dict[str, Any]:
    response: dict[str, Any] = {
        "description": description,
        "content": {"application/json": {"schema": {"$ref": "#/components/schemas/Problem"}}},
    }
    if retry_after:
        response["headers"] = {
            "Retry-After": {"schema": {"type": "integer"}, "description": "Seconds to wait"}
        }
    return response


def _json(schema: dict[str, Any], description: str) -> dict[str, Any]:
    return {"description": description, "content": {"application/json": {"schema": schema}}}


_OPEN: dict[str, Any] = {"security": []}
_UNAUTHORIZED = _problem(
    "Missing or wrong API key (send it as a Bearer token in the Authorization header)"
)
_RATE_LIMITED = _problem("Over this API key's rate limit", retry_after=True)
# What POST /v1/mail and POST /v1/mail/batch both answer alike.
_SUBMISSION_REFUSALS = {
    "401": _UNAUTHORIZED,
    "408": _problem("The body did not arrive within CLIENT_TIMEOUT"),
    "409": _problem(
        "Idempotency-Key used with a different body, or its first request is still in progress",
        True,
    ),
    "415": _problem("The body is not JSON"),
    "429": _RATE_LIMITED,
    "501": _problem(
        "Idempotency-Key or scheduled_at sent, but this deployment is without tracking or "
        "scheduling"
    ),
}
# GET and DELETE /v1/mail/{id}: the path's id, and what both answer alike.
_MESSAGE_ID = {"name": "id", "in": "path", "required": True, "schema": {"type": "string"}}
_ONE_MESSAGE_REFUSALS = {
    "401": _UNAUTHORIZED,
    "404": _problem("No such message for this API key"),
    "429": _RATE_LIMITED,
    "501": _problem("Tracking is off (no STATUS_TABLE)"),
}
_NULLABLE_TEXT = {"type": ["string", "null"]}
_TIMESTAMP = {"type": "string", "format": "date-time"}
_MESSAGE_STATUS = {
    "type": "object",
    "required": [
        "id",
        "owner",
        "status",
        "stream",
        "provider",
        "provider_message_id",
        "attempts",
        "last_error",
        "recipients",
        "created_at",
        "updated_at",
        "sent_at",
        "expires_at",
        "suppressed",
        "delivery",
    ],
    "properties": {
        "id": {"type": "string"},
        "owner": {"type": "string", "description": "Name of the API key that submitted it"},
        "status": {
            "type": "string",
            "enum": [status.value for status in Status]
            + [outcome.value for outcome in DeliveryOutcome],
            "description": "Once the provider reported back: the furthest recipient outcome",
        },
        "stream": {"type": "string", "enum": list(STREAMS)},
        "provider": {**_NULLABLE_TEXT, "description": "Provider of the last attempt"},
        "provider_message_id": {**_NULLABLE_TEXT, "description": "The provider's id, once sent"},
        "attempts": {"type": "integer", "description": "Sending attempts so far"},
        "last_error": {**_NULLABLE_TEXT, "description": "Why the last failed attempt failed"},
        "recipients": {"type": "integer"},
        "created_at": _TIMESTAMP,
        "updated_at": _TIMESTAMP,
        "sent_at": {"type": ["string", "null"], "format": "date-time"},
        "expires_at": {**_TIMESTAMP, "description": "The record is deleted after this"},
        "suppressed": {
            "type": "array",
            "items": {"type": "string"},
            "description": "Recipients left out because they are on the suppression list",
        },
        "delivery": {
            "type": "array",
            "description": "Each recipient's latest outcome, as the provider reported it",
            "items": {
                "type": "object",
                "required": ["recipient", "outcome", "at", "source"],
                "properties": {
                    "recipient": {"type": "string"},
                    "outcome": {"type": "string", "enum": [o.value for o in DeliveryOutcome]},
                    "at": _TIMESTAMP,
                    "source": {"type": "string", "enum": ["ses", "mailgun"]},
                    "bounce_type": {"type": "string", "enum": [b.value for b in BounceType]},
                    "diagnostic": {"type": "string", "maxLength": 500},
                },
            },
        },
    },
}
_SUPPRESSION = {
    "type": "object",
    "required": ["address", "reason", "source", "detail", "message_id", "created_at"],
    "properties": {
        "address": {"type": "string", "description": "Lower-cased bare address"},
        "reason": {"type": "string", "enum": ["bounce", "complaint", "unsubscribe", "manual"]},
        "source": {"type": "string", "enum": ["ses", "mailgun", "api"]},
        "detail": {**_NULLABLE_TEXT, "description": "The provider's diagnostic, or yours"},
        "message_id": {**_NULLABLE_TEXT, "description": "The message that caused it"},
        "created_at": _TIMESTAMP,
    },
}
_ADDRESSES = {"type": "array", "items": {"type": "string"}}


def _all_suppressed(suppressed: dict[str, Any]) -> dict[str, Any]:
    return {
        "type": "object",
        "required": ["Message", "Problem", "suppressed"],
        "properties": {
            "Message": {"type": "string", "enum": ["not submitted"]},
            "Problem": {"type": "string"},
            "suppressed": suppressed,
        },
    }


_ADDRESS_PARAMETER = {
    "name": "address",
    "in": "path",
    "required": True,
    "schema": {"type": "string", "minLength": 1, "maxLength": MAX_ADDRESS_PARAMETER},
    "description": "The address, in any letter case",
}
_IDEMPOTENCY_KEY = {
    "name": "Idempotency-Key",
    "in": "header",
    "required": False,
    "schema": {"type": "string", "minLength": 1, "maxLength": 256},
    "description": "Kept 24 hours per API key: a repeat with the same body gets the first "
    "answer (header `Idempotent-Replayed: true`) and queues nothing.",
}


def openapi_document(version: str) -> dict[str, Any]:
    mail_schema = MailRequest.model_json_schema(
        by_alias=True, ref_template="#/components/schemas/{model}"
    )
    definitions = mail_schema.pop("$defs", {})
    return {
        "openapi": "3.1.0",
        "info": {
            "title": "limbo",
            "version": version,
            "description": "Queue email for sending through AWS SES or Mailgun.",
        },
        "paths": {
            "/": {
                "get": {
                    "operationId": "hello",
                    **_OPEN,
                    "responses": {
                        "200": _json(
                            {
                                "type": "object",
                                "required": ["hello"],
                                "properties": {"hello": {"type": "string"}},
                            },
                            "Greeting",
                        )
                    },
                }
            },
            "/health": {
                "get": {
                    "operationId": "health",
                    **_OPEN,
                    "responses": {
                        "200": _json(
                            {
                                "type": "object",
                                "required": ["health"],
                                "properties": {"health": {"type": "string"}},
                            },
                            "The process is alive",
                        )
                    },
                }
            },
            "/ready": {
                "get": {
                    "operationId": "ready",
                    **_OPEN,
                    "responses": {
                        "200": _json({"type": "object"}, "The queue is reachable"),
                        "503": _json({"type": "object"}, "The queue is unreachable"),
                    },
                }
            },
            "/v1/mail": {
                "post": {
                    "operationId": "submitMail",
                    "summary": "Validate an email and queue it for sending",
                    "parameters": [_IDEMPOTENCY_KEY],
                    "requestBody": {
                        "required": True,
                        "content": {
                            "application/json": {
                                "schema": {"$ref": "#/components/schemas/MailRequest"}
                            }
                        },
                    },
                    "responses": {
                        "200": _json({"$ref": "#/components/schemas/Submitted"}, "Queued"),
                        **_SUBMISSION_REFUSALS,
                        "400": _problem("The body is not a valid email request"),
                        "413": _problem("The body is too large"),
                        "403": _problem(
                            "The from address is outside the sender domains allowed for "
                            "this API key (SENDER_DOMAINS, KEY_SENDER_DOMAINS)"
                        ),
                        "422": _json(
                            _all_suppressed(_ADDRESSES),
                            "Every To recipient is on the suppression list (nothing queued)",
                        ),
                        "503": _problem(
                            "The queue or the status store is unavailable; retry later", True
                        ),
                    },
                }
            },
            "/v1/mail/batch": {
                "post": {
                    "operationId": "submitMailBatch",
                    "summary": "Validate up to 100 emails and queue them all, or none",
                    "description": "Each email is validated like POST /v1/mail; one invalid "
                    "email refuses the whole batch (the Problem names its index, `[3].to[0]`). "
                    "Suppressed recipients are left out per email; an email with no To "
                    "recipient left is not queued (its id is null, `refused` says why). "
                    "An Idempotency-Key covers the batch as a whole.",
                    "parameters": [_IDEMPOTENCY_KEY],
                    "requestBody": {
                        "required": True,
                        "content": {
                            "application/json": {
                                "schema": {
                                    "type": "array",
                                    "minItems": 1,
                                    "maxItems": MAX_BATCH,
                                    "items": {"$ref": "#/components/schemas/MailRequest"},
                                }
                            }
                        },
                    },
                    "responses": {
                        "200": _json(
                            {"$ref": "#/components/schemas/SubmittedBatch"},
                            "All queued; one id per email, in order",
                        ),
                        **_SUBMISSION_REFUSALS,
                        "400": _problem("An email of the batch is invalid (nothing queued)"),
                        "413": _problem("The body or one email's attachments are too large"),
                        "422": _json(
                            _all_suppressed({"type": "array", "items": _ADDRESSES}),
                            "Every email's To recipients are all on the suppression list "
                            "(nothing queued); `suppressed` has them per email",
                        ),
                        "503": _problem(
                            "The queue or the status store is unavailable, or the API is at "
                            "MAX_CONCURRENT_REQUESTS; retry later",
                            True,
                        ),
                    },
                }
            },
            "/v1/mail/{id}": {
                "delete": {
                    "operationId": "cancelMail",
                    "summary": "Cancel a scheduled message that is not yet due",
                    "parameters": [_MESSAGE_ID],
                    "responses": {
                        **_ONE_MESSAGE_REFUSALS,
                        "200": _json({"$ref": "#/components/schemas/Canceled"}, "Canceled"),
                        "409": _problem("The message is no longer scheduled (sent or sending)"),
                        "503": _problem("The status store is unavailable; retry later", True),
                    },
                },
                "get": {
                    "operationId": "getMail",
                    "summary": "Where a message is: its status record",
                    "parameters": [_MESSAGE_ID],
                    "responses": {
                        **_ONE_MESSAGE_REFUSALS,
                        "200": _json({"$ref": "#/components/schemas/MessageStatus"}, "The record"),
                        "503": _problem(
                            "The status store is unavailable, or the API is at "
                            "MAX_CONCURRENT_REQUESTS; retry later",
                            True,
                        ),
                    },
                },
            },
            "/v1/suppressions": {
                "get": {
                    "operationId": "listSuppressions",
                    "summary": "This API key's suppression list, a page at a time",
                    "parameters": [
                        {
                            "name": "limit",
                            "in": "query",
                            "required": False,
                            "schema": {"type": "integer", "minimum": 1, "maximum": MAX_PAGE},
                        },
                        {
                            "name": "cursor",
                            "in": "query",
                            "required": False,
                            "schema": {
                                "type": "string",
                                "maxLength": MAX_CURSOR,
                                "pattern": CURSOR_PATTERN,
                            },
                            "description": "The `cursor` of the previous page (the page "
                            "starts after the address it encodes)",
                        },
                    ],
                    "responses": {
                        "200": _json(
                            {
                                "type": "object",
                                "required": ["suppressions", "cursor"],
                                "properties": {
                                    "suppressions": {
                                        "type": "array",
                                        "items": {"$ref": "#/components/schemas/Suppression"},
                                    },
                                    "cursor": {
                                        **_NULLABLE_TEXT,
                                        "description": "Null on the last page",
                                    },
                                },
                            },
                            "One page, in address order",
                        ),
                        "400": _problem("A limit out of range or a malformed cursor"),
                        "401": _UNAUTHORIZED,
                        "429": _RATE_LIMITED,
                        "501": _problem("Tracking is off (no STATUS_TABLE)"),
                        "503": _problem("The status store is unavailable; retry later", True),
                    },
                },
                "post": {
                    "operationId": "addSuppression",
                    "summary": "Suppress an address by hand",
                    "requestBody": {
                        "required": True,
                        "content": {
                            "application/json": {
                                "schema": {
                                    "type": "object",
                                    "additionalProperties": False,
                                    "required": ["address", "reason"],
                                    "properties": {
                                        "address": address_json_schema(),
                                        "reason": {
                                            "type": "string",
                                            "minLength": 1,
                                            "maxLength": MAX_REASON,
                                            "pattern": REASON_PATTERN,
                                        },
                                    },
                                }
                            }
                        },
                    },
                    "responses": {
                        "201": _json({"$ref": "#/components/schemas/Suppression"}, "Suppressed"),
                        "400": _problem("Not a valid address or reason"),
                        "401": _UNAUTHORIZED,
                        "429": _RATE_LIMITED,
                        "501": _problem("Tracking is off (no STATUS_TABLE)"),
                        "503": _problem("The status store is unavailable; retry later", True),
                    },
                },
            },
            "/v1/suppressions/{address}": {
                "get": {
                    "operationId": "getSuppression",
                    "parameters": [_ADDRESS_PARAMETER],
                    "responses": {
                        "200": _json({"$ref": "#/components/schemas/Suppression"}, "Suppressed"),
                        "401": _UNAUTHORIZED,
                        "404": _problem("Not suppressed for this API key"),
                        "429": _RATE_LIMITED,
                        "501": _problem("Tracking is off (no STATUS_TABLE)"),
                        "503": _problem("The status store is unavailable; retry later", True),
                    },
                },
                "delete": {
                    "operationId": "removeSuppression",
                    "summary": "Send to the address again",
                    "parameters": [_ADDRESS_PARAMETER],
                    "responses": {
                        "200": _json(
                            {
                                "type": "object",
                                "required": ["Message", "address"],
                                "properties": {
                                    "Message": {"type": "string", "enum": ["removed"]},
                                    "address": {"type": "string"},
                                },
                            },
                            "Removed",
                        ),
                        "401": _UNAUTHORIZED,
                        "404": _problem("Not suppressed for this API key"),
                        "429": _RATE_LIMITED,
                        "501": _problem("Tracking is off (no STATUS_TABLE)"),
                        "503": _problem("The status store is unavailable; retry later", True),
                    },
                },
            },
            **webhook_paths(_problem, _UNAUTHORIZED, _RATE_LIMITED),
            "/metrics": {
                "get": {
                    "operationId": "metrics",
                    **_OPEN,
                    "responses": {
                        "200": {
                            "description": "Prometheus text, or JSON with Accept: application/json"
                        },
                    },
                }
            },
            "/openapi.json": {
                "get": {
                    "operationId": "openapi",
                    **_OPEN,
                    "responses": {
                        "200": _json({"type": "object"}, "This document"),
                    },
                }
            },
        },
        "webhooks": webhooks_sent(),
        "security": [{"apiKey": []}],
        "components": {
            "securitySchemes": {
                "apiKey": {
                    "type": "http",
                    "scheme": "bearer",
                    "description": "An API key minted by limbo-api-key; its name owns the mail. "
                    "Not required when the API runs with AUTH=disabled.",
                },
            },
            "schemas": {
                "MessageStatus": _MESSAGE_STATUS,
                "Suppression": _SUPPRESSION,
                **definitions,
                "MailRequest": mail_schema,
                "Problem": _PROBLEM,
                "SubmittedBatch": {
                    "type": "object",
                    "required": ["Message", "ids"],
                    "properties": {
                        "Message": {"type": "string", "enum": ["submitted"]},
                        "ids": {
                            "type": "array",
                            "items": {"type": ["string", "null"]},
                            "description": "limbo's message ids, in the batch's order; null "
                            "for an email not queued because every To recipient is suppressed",
                        },
                        "suppressed": {
                            "type": "array",
                            "items": _ADDRESSES,
                            "description": "Per email, in order, the recipients left out "
                            "(suppressed); absent if none",
                        },
                        "refused": {
                            "type": "array",
                            "items": {
                                "type": "object",
                                "required": ["index", "Problem"],
                                "properties": {
                                    "index": {"type": "integer", "minimum": 0},
                                    "Problem": {"type": "string"},
                                },
                            },
                            "description": "The emails not queued, by index; absent if none",
                        },
                    },
                },
                "Canceled": {
                    "type": "object",
                    "required": ["Message", "id"],
                    "properties": {
                        "Message": {"type": "string", "enum": ["canceled"]},
                        "id": {"type": "string"},
                    },
                },
                **webhook_schemas(),
                "Submitted": {
                    "type": "object",
                    "required": ["Message", "id"],
                    "properties": {
                        "Message": {"type": "string", "enum": ["submitted"]},
                        "id": {"type": "string", "description": "limbo's message id"},
                        "suppressed": {
                            "type": "array",
                            "items": {"type": "string"},
                            "description": "Recipients left out (suppressed); absent if none",
                        },
                    },
                },
            },
        },
    }
