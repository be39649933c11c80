"""The OpenAPI document, generated from the same pydantic models that validate."""

from __future__ import annotations

from typing import Any

from limbo_shared.schema import MailRequest

__all__ = ["openapi_document"]

_PROBLEM = {
    "type": "object",
    "required": ["Message", "Problem"],
    "properties": {
        "Message": {"type": "string", "enum": ["not submitted"]},
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
            "/": {"get": {"operationId": "hello", "responses": {"200": _json(
                {"type": "object", "required": ["hello"],
                 "properties": {"hello": {"type": "string"}}}, "Greeting")}}},
            "/health": {"get": {"operationId": "health", "responses": {"200": _json(
                {"type": "object", "required": ["health"],
                 "properties": {"health": {"type": "string"}}}, "The process is alive")}}},
            "/ready": {"get": {"operationId": "ready", "responses": {
                "200": _json({"type": "object"}, "The queue is reachable"),
                "503": _json({"type": "object"}, "The queue is unreachable"),
            }}},
            "/v1/mail": {
                "post": {
                    "operationId": "submitMail",
                    "summary": "Validate an email and queue it for sending",
                    "requestBody": {
                        "required": True,
                        "content": {"application/json": {
                            "schema": {"$ref": "#/components/schemas/MailRequest"}}},
                    },
                    "responses": {
                        "200": _json({"$ref": "#/components/schemas/Submitted"}, "Queued"),
                        "400": _problem("The body is not a valid email request"),
                        "408": _problem("The body did not arrive within CLIENT_TIMEOUT"),
                        "413": _problem("The body is too large"),
                        "415": _problem("The body is not JSON"),
                        "503": _problem("The queue is unavailable; retry later", True),
                    },
                }
            },
        },
        "components": {
            "schemas": {
                **definitions,
                "MailRequest": mail_schema,
                "Problem": _PROBLEM,
                "Submitted": {
                    "type": "object",
                    "required": ["Message", "id"],
                    "properties": {
                        "Message": {"type": "string", "enum": ["submitted"]},
                        "id": {"type": "string", "description": "limbo's message id"},
                    },
                },
            }
        },
    }
