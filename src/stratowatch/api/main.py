"""``create_app(pipeline)``: the FastAPI application over a running pipeline (wiring only)."""

from __future__ import annotations

import contextlib
import gc
import sys
from collections.abc import AsyncIterator
from typing import Any

from fastapi import FastAPI

from stratowatch.api import access
from stratowatch.api.errors import install_error_handlers
from stratowatch.api.metrics import MetricsMiddleware, RequestMetrics
from stratowatch.api.picture import Pictures
from stratowatch.api.routers import (
    admin,
    alerts,
    audit,
    auth,
    console,
    exports,
    federation,
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


def create_app(
    pipeline: Any,
    *,
    heartbeat_s: float = 15.0,
    picture_ttl_s: float = 5.0,
    freeze_gc: bool = True,
    switch_interval_s: float | None = 0.0005,
    authority: Any = None,
) -> FastAPI:
    """The API over ``pipeline`` (anything with ``.store``, ``.bus``, ``.acknowledge`` and ``.resolve``;
    normally :class:`stratowatch.service.pipeline.Pipeline`). ``heartbeat_s``: SSE keep-alive period;
    ``picture_ttl_s``: how stale the in-memory live picture may get while the bus is quiet
    (0: read the store on every request).

    ``freeze_gc``: at start-up, move every object alive then (modules, the pipeline, the
    restored tracker) out of the cyclic garbage collector's reach (``gc.freeze``). Without it a
    full collection walks them all every few steps and stops the process for 100-200 ms, which
    is the API's worst latency; with it such a collection takes a few ms.

    ``switch_interval_s``: while the API runs, the interpreter hands the GIL between threads this
    often (Python's default is 5 ms). The pipeline steps in a worker thread of the same process;
    each time the event loop waits on I/O it must win the GIL back, and at 5 ms a request that
    does that several times during a 100-250 ms step takes tens of milliseconds. At 0.5 ms the
    p99 of ``GET /api/v1/tracks`` under ingest drops several-fold (bench/api_bench.py). ``None``
    leaves the setting alone; the previous value is restored at shutdown.

    ``authority``: the :class:`stratowatch.sharing.auth.Authority` that checks credentials
    (default: one over ``pipeline.store`` and ``pipeline.settings``); every request passes the
    access rules of :mod:`stratowatch.api.access`."""
    pictures = Pictures(pipeline, store_ttl_s=picture_ttl_s)

    @contextlib.asynccontextmanager
    async def lifespan(app: FastAPI) -> AsyncIterator[None]:
        if freeze_gc:
            gc.collect()
            gc.freeze()
        previous_interval_s = sys.getswitchinterval()
        if switch_interval_s is not None:
            sys.setswitchinterval(switch_interval_s)
        pictures.start()
        try:
            yield
        finally:
            await pictures.stop()
            access.close(app)
            sys.setswitchinterval(previous_interval_s)

    app = FastAPI(title="stratowatch", version="1", description=DESCRIPTION, lifespan=lifespan)
    app.state.pipeline = pipeline
    app.state.picture = pictures.own
    app.state.pictures = pictures
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
        console,
        federation,
        auth,
        admin,
    ):
        app.include_router(module.router)
    access.install(app, pipeline, authority=authority)
    app.add_middleware(MetricsMiddleware, metrics=app.state.request_metrics)
    return app
