"""Baseline API: validate, then one synchronous SendMessage per request (not limbo)."""

from __future__ import annotations

import json
import os
import time
import uuid

import boto3
import uvicorn
from botocore.config import Config
from pydantic import ValidationError
from starlette.applications import Starlette
from starlette.concurrency import run_in_threadpool
from starlette.requests import Request
from starlette.responses import JSONResponse
from starlette.routing import Route

from limbo_shared.schema import MailRequest, QueuedMail

QUEUE = os.environ["QUEUE"]
sqs = boto3.session.Session().client(
    "sqs",
    region_name=os.environ["REGION"],
    endpoint_url=os.environ.get("AWS_ENDPOINT_URL"),
    config=Config(max_pool_connections=64),
)


async def submit_async(request: Request) -> JSONResponse:
    body = await request.body()
    try:
        mail = MailRequest.model_validate(json.loads(body))
    except (ValueError, ValidationError) as error:
        return JSONResponse({"Message": "not submitted", "Problem": str(error)}, status_code=400)
    message_id = str(uuid.uuid4())
    envelope = QueuedMail(id=message_id, owner="default", submitted_at=time.time(), mail=mail)
    # The original design: one SendMessage per request, answered when SQS answers.
    await run_in_threadpool(
        sqs.send_message,
        QueueUrl=QUEUE,
        MessageBody=envelope.to_json(),
        MessageGroupId="default",
        MessageDeduplicationId=message_id,
    )
    return JSONResponse({"Message": "submitted", "id": message_id})


async def health(request: Request) -> JSONResponse:
    return JSONResponse({"health": "ok"})


app = Starlette(
    routes=[Route("/v1/mail", submit_async, methods=["POST"]), Route("/health", health)]
)

if __name__ == "__main__":
    uvicorn.run(
        app,
        host="127.0.0.1",
        port=int(os.environ.get("PORT", "8081")),
        log_level="warning",
        access_log=False,
    )
