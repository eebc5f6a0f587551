"""The store as one audience reads it: :class:`ScopedStore`.

Every read runs in the audience's scope (:func:`stratowatch.store._sql.scope`): SQLite rewrites
the query with the releasability rule, PostgreSQL runs it under row-level security, so what a
partner may not see never leaves the database for it. On top of the labels, a partner's
redactions (``[[partners]] redact = [...]`` in the configuration) withhold whole kinds of data:
``observations`` (raw plots), ``sensor_sites`` (sensor positions), ``predictions``, ``alerts``,
``incidents``, ``geofences``. A partner's scoped store refuses writes; the node's own (audience
``""``) passes them through.
"""

from __future__ import annotations

import dataclasses
from collections.abc import Callable, Iterable
from typing import Any

from stratowatch.model import Sensor
from stratowatch.sharing.labels import visible
from stratowatch.store._sql import scope

#: Read methods and what each returns when its kind of data is redacted.
_READS: dict[str, tuple[str | None, Any]] = {
    "observations": ("observations", list),
    "count_observations": ("observations", int),
    "quarantine_records": ("observations", list),
    "tracks": (None, None),
    "count_tracks": (None, None),
    "track": (None, None),
    "track_history": (None, None),
    "history_in_box": (None, None),
    "prediction": ("predictions", type(None)),
    "alerts": ("alerts", list),
    "count_alerts": ("alerts", int),
    "alert": ("alerts", type(None)),
    "incidents": ("incidents", list),
    "count_incidents": ("incidents", int),
    "incident": ("incidents", type(None)),
    "sensors": (None, None),
    "geofences": ("geofences", list),
    "partners": (None, None),
    "audit_log": (None, None),
    "count": (None, None),
}

#: ``count(table)`` of a redacted kind answers 0.
_COUNT_KINDS = {
    "observations": "observations",
    "quarantine": "observations",
    "predictions": "predictions",
    "alerts": "alerts",
    "incidents": "incidents",
    "geofences": "geofences",
}


class PartnerWriteError(PermissionError):
    """A partner's scoped store was asked to change the node's data."""


def _no_site(sensor: Sensor) -> Sensor:
    nan = float("nan")
    return dataclasses.replace(sensor, lat_deg=nan, lon_deg=nan, alt_m=nan)


class ScopedStore:
    """``store`` as ``audience`` reads it (see the module docstring)."""

    def __init__(self, store: Any, audience: str, redact: Iterable[str] = ()) -> None:
        self.store = store
        self.audience = audience
        self.redact = frozenset(redact) if audience else frozenset()

    def __getattr__(self, name: str) -> Any:
        attr = getattr(self.store, name)
        if name in _READS:
            return self._read(name, attr)
        if callable(attr) and self.audience and not name.startswith("_"):
            raise PartnerWriteError(f"partner {self.audience} may not call {name}")
        return attr

    def _read(self, name: str, fn: Callable[..., Any]) -> Callable[..., Any]:
        kind, empty = _READS[name]

        def read(*args: Any, **kwargs: Any) -> Any:
            if kind is not None and kind in self.redact:
                return empty()
            if name == "count":
                table = args[0] if args else kwargs.get("table", "observations")
                if _COUNT_KINDS.get(table) in self.redact:
                    return 0
            with scope(self.audience):
                out = fn(*args, **kwargs)
            if name == "sensors" and self.audience:
                hide_all = "sensor_sites" in self.redact
                out = [
                    _no_site(s)
                    if hide_all
                    or (s.site_releasable_to is not None and not visible(s.site_releasable_to, self.audience))
                    else s
                    for s in out
                ]
            return out

        return read
