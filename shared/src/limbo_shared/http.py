"""HTTP pieces every limbo process serves the same way: health, metrics, error shape."""

from __future__ import annotations

import math
from typing import Any

from prometheus_client import CONTENT_TYPE_LATEST, REGISTRY, CollectorRegistry, generate_latest
from starlette.requests import Request
from starlette.responses import JSONResponse, Response

__all__ = ["metrics_response", "problem"]


def problem(
    status: int, text: str, headers: dict[str, str] | None = None, *, message: str = "not submitted"
) -> JSONResponse:
    """The API's error shape: ``{"Message": "not submitted", "Problem": ...}``."""
    return JSONResponse({"Message": message, "Problem": text}, status_code=status, headers=headers)


def _summary(registry: CollectorRegistry) -> dict[str, Any]:
    values: dict[str, float] = {}
    for family in registry.collect():
        for sample in family.samples:
            # JSON has no infinity or NaN (a gauge of "no limit" is +Inf): leave those out.
            if not math.isfinite(sample.value):
                continue
            if sample.name.endswith(("_total", "_count", "_sum")) or family.type == "gauge":
                key = sample.name
                if sample.labels:
                    key += (
                        "{" + ",".join(f"{k}={v}" for k, v in sorted(sample.labels.items())) + "}"
                    )
                values[key] = sample.value
    return values


def metrics_response(request: Request, registry: CollectorRegistry = REGISTRY) -> Response:
    """Prometheus text by default; a JSON summary for ``Accept: application/json``."""
    if "application/json" in request.headers.get("accept", ""):
        return JSONResponse({"metrics": "ok", "values": _summary(registry)})
    return Response(generate_latest(registry), media_type=CONTENT_TYPE_LATEST)
