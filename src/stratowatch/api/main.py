"""``create_app(pipeline)``: the FastAPI application over a running pipeline (wiring only)."""

from __future__ import annotations

from typing import Any

from fastapi import FastAPI

from stratowatch.api.errors import install_error_handlers
from stratowatch.api.metrics import MetricsMiddleware, RequestMetrics
from stratowatch.api.routers import (
    alerts,
    audit,
    exports,
    geofences,
    health,
    incidents,
    observations,
    predictions,
    sensors,
    stream,
    tracks,
)

DESCRIPTION = """Live air picture of high-altitude balloons, aircraft and unknown objects: tracks with
their classification, observations, drift predictions, alerts and incidents, sensors and geofences.

Lists are paged with `limit` (at most 1000) and `offset` and answer `{"items", "total", "limit",
"offset"}`. Every error answers `{"error": {"code", "message", "details"}}`. Times are POSIX
seconds UTC; positions WGS-84 degrees and metres. Live updates: `GET /api/v1/stream` (SSE)."""


def create_app(pipeline: Any, *, heartbeat_s: float = 15.0) -> FastAPI:
    """The API over ``pipeline`` (anything with ``.store``, ``.bus``, ``.acknowledge`` and ``.resolve``;
    normally :class:`stratowatch.service.pipeline.Pipeline`). ``heartbeat_s``: SSE keep-alive period."""
    app = FastAPI(title="stratowatch", version="1", description=DESCRIPTION)
    app.state.pipeline = pipeline
    app.state.heartbeat_s = heartbeat_s
    app.state.request_metrics = RequestMetrics()
    app.state.stream_clients = 0
    app.state.stream_dropped = 0
    install_error_handlers(app)
    for module in (
        health,
        tracks,
        observations,
        predictions,
        alerts,
        incidents,
        sensors,
        geofences,
        audit,
        stream,
        exports,
    ):
        app.include_router(module.router)
    app.add_middleware(MetricsMiddleware, metrics=app.state.request_metrics)
    return app
