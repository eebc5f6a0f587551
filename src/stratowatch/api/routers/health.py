"""``/health`` (is the service up, how big is the picture) and ``/metrics`` (Prometheus text)."""

from __future__ import annotations

import logging
import time
from collections.abc import Mapping
from typing import Annotated, Any

from fastapi import APIRouter, Depends, Request
from fastapi.responses import JSONResponse, PlainTextResponse

from stratowatch.api.convert import json_safe
from stratowatch.api.deps import call, get_pipeline
from stratowatch.api.metrics import render
from stratowatch.api.models import HealthOut

log = logging.getLogger(__name__)

router = APIRouter(tags=["health"])

#: Store tables counted by /health and exported as gauges by /metrics.
COUNTED_TABLES = ("tracks", "observations", "alerts", "incidents")


def _counts(store: Any) -> tuple[dict[str, int], list[str]]:
    counts: dict[str, int] = {}
    failed: list[str] = []
    for table in COUNTED_TABLES:
        try:
            counts[table] = int(store.count(table))
        except Exception:
            log.warning("store count(%r) failed", table, exc_info=True)
            failed.append(table)
    return counts, failed


def _pipeline_info(pipeline: Any) -> dict[str, Any]:
    """The pipeline's own health numbers (``health()``), when it offers them; its ``"counters"``
    entry maps Prometheus counter names to (help, value)."""
    fn = getattr(pipeline, "health", None)
    info = fn() if callable(fn) else None
    return dict(info) if isinstance(info, Mapping) else {}


@router.get("/health", response_model=HealthOut, summary="Service health")
async def health(request: Request, pipeline: Annotated[Any, Depends(get_pipeline)]) -> JSONResponse:
    """``ok`` while the store answers; ``degraded`` (HTTP 503) when it does not. Anyone may ask;
    the sizes of the picture (``counts``, ``pipeline``) are shown only to the node's own
    principals (counts are data a partner or a stranger may not have)."""
    counts, failed = await call(_counts, pipeline.store)
    info = await call(_pipeline_info, pipeline)
    degraded = bool(failed) or info.get("ok") is False
    body: dict[str, Any] = {
        "status": "degraded" if degraded else "ok",
        "time_s": time.time(),
        "uptime_s": time.time() - request.app.state.request_metrics.started_s,
    }
    principal = getattr(request.state, "principal", None)
    if principal is not None and principal.is_own:
        body["counts"] = counts
        body["pipeline"] = json_safe(info)
    return JSONResponse(body, status_code=503 if degraded else 200)


@router.get(
    "/metrics",
    response_class=PlainTextResponse,
    summary="Prometheus metrics",
    responses={200: {"content": {"text/plain": {}}, "description": "Prometheus text format 0.0.4."}},
)
async def metrics(request: Request, pipeline: Annotated[Any, Depends(get_pipeline)]) -> PlainTextResponse:
    counts, _ = await call(_counts, pipeline.store)
    gauges: dict[str, tuple[str, float]] = {
        f"stratowatch_{table}": (f"Rows in the store's {table} table.", float(n))
        for table, n in counts.items()
    }
    state = request.app.state
    gauges["stratowatch_stream_clients"] = (
        "Open live-stream (SSE) connections.",
        float(state.stream_clients),
    )
    counters: dict[str, tuple[str, float]] = {
        "stratowatch_stream_dropped_events_total": (
            "Live-stream events dropped for slow clients.",
            float(state.stream_dropped),
        )
    }
    info = await call(_pipeline_info, pipeline)
    for name, entry in dict(info.pop("counters", None) or {}).items():
        help_text, value = entry
        counters[str(name)] = (str(help_text), float(value))
    for key, value in info.items():
        if isinstance(value, (int, float)) and not isinstance(value, bool):
            name = "stratowatch_pipeline_" + "".join(c if c.isalnum() else "_" for c in str(key))
            gauges[name] = (f"Pipeline figure '{key}'.", float(value))
    text = render(state.request_metrics, gauges, {"counters": counters})
    return PlainTextResponse(text, media_type="text/plain; version=0.0.4; charset=utf-8")
