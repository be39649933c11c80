"""The OpenAPI description of ``/v1/webhooks`` and of the webhooks limbo sends."""

from __future__ import annotations

from typing import Any

from limbo_shared.webhooks import MAX_ATTEMPTS_KEPT, MAX_ENDPOINTS, EventType
from limbo_shared.webhooks.destinations import MAX_URL_LENGTH, URL_PATTERN

__all__ = ["webhook_paths", "webhook_schemas", "webhooks_sent"]

_TIMESTAMP = {"type": "string", "format": "date-time"}
_EVENTS = {
    "type": "array",
    "items": {"type": "string", "enum": [event.value for event in EventType]},
    "minItems": 1,
    "maxItems": len(EventType),
    "uniqueItems": True,
    "description": "Status changes to be told about",
}
_ENDPOINT_PROPERTIES: dict[str, Any] = {
    "id": {"type": "string"},
    "url": {"type": "string"},
    "events": _EVENTS,
    "enabled": {
        "type": "boolean",
        "description": "False once every attempt failed for WEBHOOK_DISABLE_AFTER",
    },
    "disabled_at": {"type": ["string", "null"], "format": "date-time"},
    "disabled_reason": {"type": ["string", "null"]},
    "created_at": _TIMESTAMP,
}
_ENDPOINT_REQUIRED = list(_ENDPOINT_PROPERTIES)
_SECRET = {
    "type": "string",
    "pattern": "^whsec_",
    "description": "The Standard Webhooks signing secret. Shown in this answer only.",
}
_ATTEMPT = {
    "type": "object",
    "required": ["at", "status_code", "latency_ms", "outcome", "webhook_id"],
    "properties": {
        "at": _TIMESTAMP,
        "status_code": {"type": ["integer", "null"], "description": "null: no HTTP answer"},
        "latency_ms": {"type": "number"},
        "outcome": {
            "type": "string",
            "description": "ok, http_error, timeout, connect_error, network_error, blocked",
        },
        "webhook_id": {"type": "string"},
    },
}


def _ref(name: str) -> dict[str, Any]:
    return {"$ref": f"#/components/schemas/{name}"}


def _json(schema: dict[str, Any], description: str) -> dict[str, Any]:
    return {"description": description, "content": {"application/json": {"schema": schema}}}


def webhook_schemas() -> dict[str, Any]:
    return {
        "WebhookRegistration": {
            "type": "object",
            "additionalProperties": False,
            "required": ["url", "events"],
            "properties": {
                "url": {
                    "type": "string",
                    "minLength": 1,
                    "maxLength": MAX_URL_LENGTH,
                    "pattern": URL_PATTERN,
                    "description": "https URL (ASCII: percent-encode the rest) of a public "
                    "host (no loopback, private, link-local or metadata addresses unless "
                    "the operator allows them); "
                    "redirects are not followed",
                },
                "events": _EVENTS,
            },
        },
        "WebhookEndpoint": {
            "type": "object",
            "required": _ENDPOINT_REQUIRED,
            "properties": _ENDPOINT_PROPERTIES,
        },
        "WebhookEndpointWithSecret": {
            "type": "object",
            "required": [*_ENDPOINT_REQUIRED, "secret"],
            "properties": {**_ENDPOINT_PROPERTIES, "secret": _SECRET},
        },
        "WebhookEndpointDetail": {
            "type": "object",
            "required": [*_ENDPOINT_REQUIRED, "attempts", "failing_since"],
            "properties": {
                **_ENDPOINT_PROPERTIES,
                "attempts": {
                    "type": "array",
                    "items": _ATTEMPT,
                    "maxItems": MAX_ATTEMPTS_KEPT,
                    "description": f"The last {MAX_ATTEMPTS_KEPT} attempts, newest first",
                },
                "failing_since": {"type": ["string", "null"], "format": "date-time"},
            },
        },
        "WebhookEvent": {
            "type": "object",
            "required": ["type", "timestamp", "data"],
            "properties": {
                "type": {
                    "type": "string",
                    "enum": [f"email.{event.value}" for event in EventType],
                },
                "timestamp": {**_TIMESTAMP, "description": "When the status changed"},
                "data": {
                    "type": "object",
                    "required": ["message_id", "status"],
                    "properties": {
                        "message_id": {"type": "string", "description": "limbo's message id"},
                        "status": {"type": "string", "enum": [e.value for e in EventType]},
                        "recipient": {"type": "string", "description": "When one is concerned"},
                        "provider": {"type": "string", "description": "ses or mailgun"},
                        "detail": {"type": "string", "maxLength": 500},
                    },
                },
            },
        },
    }


def webhook_paths(
    problem: Any, unauthorized: dict[str, Any], rate_limited: dict[str, Any]
) -> dict[str, Any]:
    """``problem(description, retry_after=False)`` builds a Problem answer."""
    common = {
        "401": unauthorized,
        "429": rate_limited,
        "501": problem("Tracking is off (no STATUS_TABLE): no webhook registry"),
        "503": problem("The status store is unavailable; retry later", True),
    }
    endpoint_id = {"name": "id", "in": "path", "required": True, "schema": {"type": "string"}}
    missing = problem("No such endpoint for this API key")
    return {
        "/v1/webhooks": {
            "post": {
                "operationId": "createWebhook",
                "summary": "Register an endpoint; the answer holds its signing secret, once",
                "requestBody": {
                    "required": True,
                    "content": {"application/json": {"schema": _ref("WebhookRegistration")}},
                },
                "responses": {
                    "201": _json(_ref("WebhookEndpointWithSecret"), "Registered"),
                    "400": problem("The body is not JSON"),
                    "408": problem("The body did not arrive in time"),
                    "409": problem(f"This API key has {MAX_ENDPOINTS} endpoints already"),
                    "413": problem("The body is too large"),
                    "422": problem("A field is invalid, or the URL is not allowed"),
                    **common,
                },
            },
            "get": {
                "operationId": "listWebhooks",
                "summary": "This API key's endpoints, and whether each is enabled",
                "responses": {
                    "200": _json(
                        {
                            "type": "object",
                            "required": ["data"],
                            "properties": {
                                "data": {"type": "array", "items": _ref("WebhookEndpoint")}
                            },
                        },
                        "The endpoints",
                    ),
                    **common,
                },
            },
        },
        "/v1/webhooks/{id}": {
            "get": {
                "operationId": "getWebhook",
                "summary": "One endpoint with its last attempts",
                "parameters": [endpoint_id],
                "responses": {
                    "200": _json(_ref("WebhookEndpointDetail"), "The endpoint"),
                    "404": missing,
                    **common,
                },
            },
            "delete": {
                "operationId": "deleteWebhook",
                "summary": "Stop sending to an endpoint",
                "parameters": [endpoint_id],
                "responses": {"204": {"description": "Deleted"}, "404": missing, **common},
            },
        },
        "/v1/webhooks/{id}/rotate": {
            "post": {
                "operationId": "rotateWebhookSecret",
                "summary": "A new signing secret; the old one also signs for 24 hours",
                "parameters": [endpoint_id],
                "responses": {
                    "200": _json(_ref("WebhookEndpointWithSecret"), "The new secret, once"),
                    "404": missing,
                    **common,
                },
            },
        },
    }


def webhooks_sent() -> dict[str, Any]:
    """OpenAPI 3.1 ``webhooks``: what limbo POSTs to a registered endpoint."""
    return {
        "emailStatus": {
            "post": {
                "summary": "A message's status changed (Standard Webhooks: verify the "
                "webhook-signature header with the endpoint's secret)",
                "parameters": [
                    {"name": name, "in": "header", "required": True, "schema": {"type": "string"}}
                    for name in ("webhook-id", "webhook-timestamp", "webhook-signature")
                ],
                "requestBody": {
                    "required": True,
                    "content": {"application/json": {"schema": _ref("WebhookEvent")}},
                },
                "responses": {"2XX": {"description": "Accepted; anything else is retried"}},
            }
        }
    }
