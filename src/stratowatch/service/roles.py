"""``stratowatch serve --role``: one command starts any part of a scaled-out deployment.

=========  ===============================================================================
``all``    today's single process: sources, pipeline (tracker, classifier, predictions,
           alerts), store, bus, API (:func:`stratowatch.service.app.run`); the default
``ingest`` the configured sources, routed to geographic cells and published on NATS
           (:func:`stratowatch.service.cellworker.run_ingest_role`); scale with the feeds
``track``  a tracker worker owning cells (leases in the store), committing observations and
           tracks (:func:`stratowatch.service.cellworker.run_track_role`)
``predict`` a prediction worker pulling track events from NATS, running ensembles on the local
           pool or a Dask cluster (:func:`stratowatch.service.predictworker.run_predict_role`)
``api``    the HTTP API, stateless over the store (PostgreSQL) and the NATS bus
           (:func:`stratowatch.service.apiworker.run_api_role`)
``alert``  the alert engine over the tracker workers' merged picture: geofence alerts and
           incidents, stored, published and notified; one active worker holds a lease, others
           stand by (:func:`stratowatch.service.alertworker.run_alert_role`)
=========  ===============================================================================

Every role but ``all`` needs ``bus_url = "nats://..."``; every role of one deployment shares
one ``store_url`` (PostgreSQL). The worker roles stop cleanly on SIGINT/SIGTERM (a tracker
worker gives its cells back, an alert worker its lease).
"""

from __future__ import annotations

import gc
import importlib
import logging
import signal
import threading
from collections.abc import Callable
from typing import Any

from stratowatch.config import ConfigError, Settings

log = logging.getLogger(__name__)

ROLES = ("all", "ingest", "track", "predict", "api", "alert")
#: role -> (module, function(settings, stop, ...)) of the worker roles
WORKER_ROLES = {
    "ingest": ("stratowatch.service.cellworker", "run_ingest_role"),
    "track": ("stratowatch.service.cellworker", "run_track_role"),
    "predict": ("stratowatch.service.predictworker", "run_predict_role"),
    "alert": ("stratowatch.service.alertworker", "run_alert_role"),
}


def check(settings: Settings, role: str) -> None:
    """A clear error for a role the settings cannot run."""
    if role not in ROLES:
        raise ConfigError(f"role {role!r}: choose one of {', '.join(ROLES)}")
    if role != "all" and not settings.bus_url.startswith("nats://"):
        raise ConfigError(
            f'the {role} role talks to the other roles over NATS: set bus_url = "nats://host:4222"'
            f" (it is {settings.bus_url!r})"
        )


def worker_entry(role: str) -> Callable[..., None]:
    """The entry point of a worker role (imported now: a missing module is a clear error)."""
    module, name = WORKER_ROLES[role]
    try:
        return getattr(importlib.import_module(module), name)
    except (ImportError, AttributeError) as exc:
        raise ConfigError(f"the {role} role is not available in this install: {exc}") from None


#: The cyclic collector's thresholds in a service process: a step over 50,000 tracks makes
#: millions of short-lived, acyclic objects (tracks, their JSON), and at Python's default
#: (700, 10, 10) the collections they trigger cost a quarter of the step (2.6 s -> 2.0 s).
GC_THRESHOLDS = (50_000, 50, 1_000)


def tune_gc() -> None:
    """Set :data:`GC_THRESHOLDS` (the service and worker processes call it once at start)."""
    gc.set_threshold(*GC_THRESHOLDS)


def run_role(
    settings: Settings,
    role: str = "all",
    *,
    on_ready: Callable[[str], None] | None = None,
    on_login: Callable[[str], None] | None = None,
    stop: threading.Event | None = None,
    **kw: Any,
) -> None:
    """Run ``role`` until interrupted (or, for the worker roles, until ``stop`` is set)."""
    check(settings, role)
    tune_gc()
    if role == "all":
        from stratowatch.service.app import run

        run(settings, on_ready=on_ready, on_login=on_login, **kw)
        return
    if role == "api":
        from stratowatch.service.apiworker import run_api_role

        run_api_role(settings, on_ready=on_ready, on_login=on_login)
        return
    entry = worker_entry(role)
    stop = stop or threading.Event()
    previous: dict[int, Any] = {}
    if threading.current_thread() is threading.main_thread():

        def on_signal(signum: int, frame: object) -> None:
            log.info("signal %d: the %s role stops", signum, role)
            stop.set()

        previous = {sig: signal.signal(sig, on_signal) for sig in (signal.SIGINT, signal.SIGTERM)}
    try:
        if on_ready is not None:
            on_ready(role)
        entry(settings, stop, **kw)
    finally:
        for sig, handler in previous.items():
            signal.signal(sig, handler)


__all__ = ["GC_THRESHOLDS", "ROLES", "check", "run_role", "tune_gc", "worker_entry"]
