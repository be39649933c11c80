from __future__ import annotations

from pydantic import Field

from limbo_shared.config import QueueSettings

__all__ = ["ApiSettings"]


class ApiSettings(QueueSettings):
    port: int = Field(default=8080, ge=1, le=65535)
    host: str = Field(default="0.0.0.0")
    # Bodies above this are refused with 413 before they are read in full.
    max_request_bytes: int = Field(default=1_048_576, ge=1024, le=16 * 1_048_576)
    # MessageGroupId lanes per sender: a FIFO group is worked one batch at a time, so
    # the lanes bound how many workers can send one sender's mail in parallel.
    group_lanes: int = Field(default=16, ge=1, le=1000)
    # SendMessageBatch calls in flight at once; more requests wait and share a batch.
    publish_concurrency: int = Field(default=4, ge=1, le=64)
    # Bound on the whole publish (batch wait + SQS call) before answering 503.
    publish_timeout: float = Field(default=10.0, gt=0, le=60)
    # Seconds a client has to send a request's head, and again its body; a slower one
    # gets 408 and loses the connection, so slow clients cannot hold the server.
    client_timeout: float = Field(default=10.0, gt=0, le=300)
