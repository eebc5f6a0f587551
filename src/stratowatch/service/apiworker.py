"""The api role: the HTTP API over the shared store and the NATS bus, holding no state of its own.

``stratowatch serve --role api`` runs :func:`run_api_role`: :func:`stratowatch.api.main.create_app`
over an :class:`ApiFacade` instead of a :class:`~stratowatch.service.pipeline.Pipeline`. Any
number of API workers can run side by side (behind a load balancer) over one PostgreSQL database:

* reads (tracks, history, observations, predictions, alerts, incidents, sensors, geofences, the
  audit log) go to the store, scoped to the caller's audience as in the single process;
* the live picture (``GET /api/v1/tracks``) follows the ``tracks`` events on the bus (whole
  pictures from the ``all`` role, one cell's tracks per event from the tracker workers), and
  re-reads the live tracks from the store when the bus has been quiet for ``picture_ttl_s``;
* the SSE stream (``GET /api/v1/stream``) is a live NATS subscription to the event subjects;
* operator actions (acknowledge an alert, resolve an incident) are applied to the rows in the
  store in one short read-modify-write, audited, and published on the bus, where the process
  that owns the alert engine (the ``all`` role) and every other API worker's stream see them.
  Acknowledging twice keeps the first acknowledgement, as the incident book does.

Credentials: the signing secret and the principals live in the store, so a token issued by one
API worker is accepted by every other one.
"""

from __future__ import annotations

import dataclasses
import logging
import threading
import time
from collections.abc import Callable
from typing import Any

from stratowatch.config import Settings
from stratowatch.model import Alert, Incident
from stratowatch.service.serialize import alert_to_json, incident_to_json

log = logging.getLogger(__name__)


class ApiFacade:
    """What :func:`~stratowatch.api.main.create_app` needs of a pipeline, over store and bus only."""

    def __init__(
        self, settings: Settings, store: Any, bus: Any, *, clock: Callable[[], float] = time.time
    ) -> None:
        self.settings = settings
        self.store = store
        self.bus = bus
        self.clock = clock
        self.winds: Any = None  # the console's back-trajectory needs a wind field: the predict role's job
        self._lock = threading.Lock()  # one operator change at a time in this worker
        self.started_s = clock()

    # ------------------------------------------------------------------ operator actions
    def acknowledge(self, alert_id: str, who: str, audience: str = "") -> Alert:
        """Acknowledge an alert (first acknowledgement stands); its incident goes open -> tracking.
        KeyError when no such alert in ``audience``'s picture; ValueError when it has no incident."""
        with self._lock:
            alert = self.store.alert(alert_id)
            if alert is None or alert.audience != audience:
                raise KeyError(alert_id)
            if alert.incident_id is None:
                raise ValueError(f"alert {alert_id!r} belongs to no incident")
            incident = self.store.incident(alert.incident_id)
            if incident is None:
                raise ValueError(f"alert {alert_id!r}: incident {alert.incident_id!r} is not stored")
            if alert.acknowledged_by is not None:
                return alert
            now = self.clock()
            alert = dataclasses.replace(alert, acknowledged_by=who, acknowledged_s=now)
            history = (*incident.history, (now, who, f"acknowledged alert {alert_id}"))
            status = incident.status
            if status == "open":
                status = "tracking"
                history = (*history, (now, who, "status open -> tracking"))
            incident = dataclasses.replace(incident, status=status, history=history, updated_s=now)
            self._changed(alert, incident, who, "acknowledge", {"alert_id": alert_id, "audience": audience})
            return alert

    def resolve(self, incident_id: str, who: str, note: str = "", audience: str = "") -> Incident:
        """Resolve an incident with a note. KeyError when unknown; ValueError when resolved already."""
        with self._lock:
            incident = self.store.incident(incident_id)
            if incident is None or incident.audience != audience:
                raise KeyError(incident_id)
            if incident.status == "resolved":
                raise ValueError(f"incident {incident_id} is already resolved")
            now = self.clock()
            what = f"status {incident.status} -> resolved" + (f": {note}" if note else "")
            incident = dataclasses.replace(
                incident, status="resolved", history=(*incident.history, (now, who, what)), updated_s=now
            )
            details = {"incident_id": incident_id, "note": note, "audience": audience}
            self._changed(None, incident, who, "resolve", details)
            return incident

    def _changed(
        self, alert: Alert | None, incident: Incident, who: str, action: str, details: dict[str, Any]
    ) -> None:
        if alert is not None:
            self.store.write_alert(alert)
        self.store.write_incident(incident)
        self.store.audit(who, action, details)
        if alert is not None:
            self.bus.publish("alerts", alert_to_json(alert))
        self.bus.publish("incidents", incident_to_json(incident))

    def geofences_changed(self) -> None:
        """Geofences are read from the store by whoever evaluates them; nothing is cached here."""

    # ------------------------------------------------------------------ health
    def health(self) -> dict[str, Any]:
        return {
            "ok": True,
            "role": "api",
            "uptime_s": self.clock() - self.started_s,
            "bus": type(self.bus).__name__,
            "counters": {},
        }


def open_api_facade(settings: Settings) -> ApiFacade:
    """An :class:`ApiFacade` over the configured store and bus (NATS, or in-process for tests)."""
    from stratowatch.service.bus import open_bus
    from stratowatch.store import open_store

    store = open_store(settings.store_url, retention=settings.retention.store_settings())
    try:
        bus = open_bus(settings.bus_url)
    except BaseException:
        store.close()
        raise
    return ApiFacade(settings, store, bus)


async def serve_api(
    settings: Settings,
    facade: ApiFacade,
    *,
    on_ready: Callable[[str], None] | None = None,
    on_login: Callable[[str], None] | None = None,
    picture_ttl_s: float = 1.0,
) -> None:
    """Serve :func:`~stratowatch.api.main.create_app` over ``facade`` until SIGINT/SIGTERM (as the
    single process does: the first administrator bootstrapped, TLS when configured)."""
    import asyncio

    import uvicorn

    from stratowatch.api.main import create_app
    from stratowatch.cli.auth import bootstrap_admin
    from stratowatch.service.app import _SERVING, _announce
    from stratowatch.sharing.auth import Authority

    authority = Authority.from_settings(facade.store, settings)
    first_admin = await asyncio.to_thread(bootstrap_admin, authority)
    app = create_app(facade, authority=authority, picture_ttl_s=picture_ttl_s)
    tls: dict[str, Any] = {}
    if settings.api.tls_certfile and settings.api.tls_keyfile:
        tls = {
            "ssl_certfile": str(settings.path(settings.api.tls_certfile)),
            "ssl_keyfile": str(settings.path(settings.api.tls_keyfile)),
        }
    server = uvicorn.Server(
        uvicorn.Config(
            app, host=settings.api.host, port=settings.api.port, log_level="warning", lifespan="on", **tls
        )
    )
    tasks = []
    if on_ready is not None or on_login is not None:
        login = (
            (authority, first_admin, on_login) if first_admin is not None and on_login is not None else None
        )
        tasks.append(asyncio.create_task(_announce(server, settings, on_ready, login)))
    _SERVING.set()
    try:
        await server.serve()
    finally:
        for task in tasks:
            task.cancel()
        _SERVING.clear()


def run_api_role(
    settings: Settings,
    *,
    on_ready: Callable[[str], None] | None = None,
    on_login: Callable[[str], None] | None = None,
    picture_ttl_s: float = 1.0,
) -> None:
    """Serve the API over the shared store and bus until SIGINT/SIGTERM."""
    import asyncio

    facade = open_api_facade(settings)
    try:
        asyncio.run(
            serve_api(settings, facade, on_ready=on_ready, on_login=on_login, picture_ttl_s=picture_ttl_s)
        )
    finally:
        facade.bus.close()
        facade.store.close()


__all__ = ["ApiFacade", "open_api_facade", "run_api_role", "serve_api"]
