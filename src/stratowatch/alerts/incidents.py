"""The incident book: alerts grouped by object, a lifecycle, who did what, and de-duplication.

An :class:`~stratowatch.model.Incident` is a thread of alerts about one object. Its lifecycle
is ``open`` (raised by the system) -> ``tracking`` (someone acknowledged one of its alerts or
took it on) -> ``resolved`` (someone closed it, with a note). Every change appends a history
entry ``(time_s, who, what)`` and returns the new, frozen Incident. Ids are ``INC-0001``...

The book also keeps the de-duplication record: for each alert id, what was last notified
(severity, probability, expected entry time, geofences). A repeat is notified again only on a
*material change* (:func:`material_change`). ``snapshot()``/``restore()`` give and take a
JSON-able dict so the pipeline can persist the whole book through the store.
"""

from __future__ import annotations

import dataclasses
import logging
from collections.abc import Mapping
from typing import Any

from stratowatch.model import Alert, Incident
from stratowatch.service.serialize import (
    alert_from_json,
    alert_to_json,
    incident_from_json,
    incident_to_json,
)

log = logging.getLogger(__name__)

SEVERITY_RANK = {"info": 0, "warning": 1, "critical": 2}
ACTIVE = ("open", "tracking")
_STATUS_RANK = {"open": 0, "tracking": 1, "resolved": 2}

__all__ = [
    "ACTIVE",
    "IncidentBook",
    "IncidentStateError",
    "UnknownIdError",
    "fingerprint",
    "material_change",
]


class UnknownIdError(LookupError):
    """No alert or incident with that id."""


class IncidentStateError(ValueError):
    """The change is not allowed in the incident's state (e.g. resolving a resolved incident)."""


def fingerprint(alert: Alert) -> dict[str, Any]:
    """What de-duplication compares between two versions of one alert (JSON-able)."""
    d = alert.details
    gids = d.get("geofence_ids")
    if not isinstance(gids, list | tuple):
        gids = [alert.geofence_id] if alert.geofence_id else []
    prob = d.get("probability")
    entry = d.get("expected_entry_s")
    return {
        "time_s": float(alert.time_s),
        "severity": SEVERITY_RANK.get(alert.severity, 1),
        "probability": float(prob) if isinstance(prob, int | float) else None,
        "entry_s": float(entry) if isinstance(entry, int | float) else None,
        "geofences": sorted(str(g) for g in gids),
        "rearmed": False,
        "track_id": alert.track_id,
    }


def material_change(
    previous: Mapping[str, Any] | None,
    current: Mapping[str, Any],
    *,
    probability_delta: float = 0.15,
    entry_shift_s: float = 3600.0,
    rearm_after_s: float = 600.0,
) -> str | None:
    """Why ``current`` must be notified again after ``previous`` (None: it must not).

    Material: first time; severity up; probability changed by more than ``probability_delta``;
    expected entry time moved by more than ``entry_shift_s``; a geofence not named before; or
    the condition ended and came back (``rearmed``, e.g. left and re-entered) at least
    ``rearm_after_s`` after the last notification (a track jittering on an edge stays quiet).
    """
    if previous is None:
        return "new"
    if current["severity"] > previous["severity"]:
        return "severity up"
    p0, p1 = previous.get("probability"), current.get("probability")
    if p0 is not None and p1 is not None and abs(p1 - p0) > probability_delta:
        return f"probability {p0:.2f} -> {p1:.2f}"
    e0, e1 = previous.get("entry_s"), current.get("entry_s")
    if e0 is not None and e1 is not None and abs(e1 - e0) > entry_shift_s:
        return f"expected entry moved by {(e1 - e0) / 3600.0:+.1f} h"
    if set(current["geofences"]) - set(previous["geofences"]):
        return "new geofence"
    if previous.get("rearmed") and current["time_s"] - previous["time_s"] >= rearm_after_s:
        return "again"
    return None


class IncidentBook:
    """In-memory incidents, the latest version of each alert, and the de-duplication record."""

    def __init__(self, prefix: str = "INC") -> None:
        self.prefix = prefix
        self._next_number = 1
        self._incidents: dict[str, Incident] = {}
        self._opened_by: dict[str, str] = {}  # incident id -> rule of the alert that opened it
        self._alerts: dict[str, Alert] = {}
        self._notified: dict[str, dict[str, Any]] = {}
        self._active_by_track: dict[int, str] = {}

    # ------------------------------------------------------------------ queries

    def incident(self, incident_id: str) -> Incident:
        try:
            return self._incidents[incident_id]
        except KeyError:
            raise UnknownIdError(f"no incident {incident_id!r}") from None

    def incidents(self, status: str | None = None) -> list[Incident]:
        return [i for i in self._incidents.values() if status is None or i.status == status]

    def alert(self, alert_id: str) -> Alert:
        try:
            return self._alerts[alert_id]
        except KeyError:
            raise UnknownIdError(f"no alert {alert_id!r}") from None

    def alerts(self) -> list[Alert]:
        return list(self._alerts.values())

    def active_for_track(self, track_id: int) -> Incident | None:
        """The open or tracking incident about this track, if any (the newest)."""
        incident_id = self._active_by_track.get(int(track_id))
        return None if incident_id is None else self._incidents[incident_id]

    def active_track_ids(self) -> set[int]:
        return set(self._active_by_track)

    def active_opened_by(self, rule: str) -> list[Incident]:
        return [
            i
            for i in self._incidents.values()
            if i.status in ACTIVE and self._opened_by.get(i.incident_id) == rule
        ]

    # ------------------------------------------------------------------ de-duplication

    def should_notify(self, alert: Alert, **limits: float) -> str | None:
        """The reason to notify ``alert`` now, or None when it repeats what was notified."""
        return material_change(self._notified.get(alert.alert_id), fingerprint(alert), **limits)

    def mark_notified(self, alert: Alert) -> None:
        self._notified[alert.alert_id] = fingerprint(alert)

    def rearm(self, alert_id: str) -> None:
        """The condition behind ``alert_id`` ended (e.g. the track left): a later repeat is news."""
        fp = self._notified.get(alert_id)
        if fp is not None:
            fp["rearmed"] = True

    def was_notified(self, alert_id: str) -> bool:
        return alert_id in self._notified

    # ------------------------------------------------------------------ changes

    def open(
        self,
        time_s: float,
        title: str,
        *,
        track_ids: tuple[int, ...] = (),
        who: str = "system",
        rule: str = "",
    ) -> Incident:
        incident_id = f"{self.prefix}-{self._next_number:04d}"
        self._next_number += 1
        inc = Incident(
            incident_id=incident_id,
            opened_s=float(time_s),
            status="open",
            title=title,
            track_ids=tuple(track_ids),
            history=((float(time_s), who, f"opened: {title}"),),
            updated_s=float(time_s),
        )
        self._put(inc)
        self._opened_by[incident_id] = rule
        log.info("incident %s opened by %s: %s", incident_id, who, title)
        return inc

    def add_alert(self, incident_id: str, alert: Alert, reason: str = "", who: str = "system") -> Incident:
        """Attach ``alert`` to the incident (and its track); the alert is recorded with its id."""
        inc = self.incident(incident_id)
        alert = dataclasses.replace(alert, incident_id=incident_id)
        self._alerts[alert.alert_id] = alert
        track_ids = inc.track_ids
        if alert.track_id is not None and alert.track_id not in track_ids:
            track_ids = (*track_ids, alert.track_id)
        alert_ids = inc.alert_ids if alert.alert_id in inc.alert_ids else (*inc.alert_ids, alert.alert_id)
        what = (
            f"alert {alert.alert_id} ({reason}): {alert.message}"
            if reason
            else f"alert {alert.alert_id}: {alert.message}"
        )
        return self._put(
            dataclasses.replace(
                inc,
                track_ids=track_ids,
                alert_ids=alert_ids,
                history=(*inc.history, (float(alert.time_s), who, what)),
                updated_s=max(inc.updated_s, float(alert.time_s)),
            )
        )

    def record_alert(self, alert: Alert) -> Alert:
        """Keep the latest version of an alert that belongs to no incident."""
        self._alerts[alert.alert_id] = alert
        return alert

    def acknowledge(self, alert_id: str, who: str, time_s: float) -> Incident:
        """Mark the alert acknowledged (the first acknowledgement stands) and take its incident
        from ``open`` to ``tracking``; returns the incident."""
        alert = self.alert(alert_id)
        if alert.incident_id is None:
            raise IncidentStateError(f"alert {alert_id!r} belongs to no incident")
        inc = self.incident(alert.incident_id)
        if alert.acknowledged_by is not None:
            return inc
        self._alerts[alert_id] = dataclasses.replace(alert, acknowledged_by=who, acknowledged_s=float(time_s))
        history = (*inc.history, (float(time_s), who, f"acknowledged alert {alert_id}"))
        status = inc.status
        if status == "open":
            status = "tracking"
            history = (*history, (float(time_s), who, "status open -> tracking"))
        log.info("alert %s acknowledged by %s", alert_id, who)
        return self._put(dataclasses.replace(inc, status=status, history=history, updated_s=float(time_s)))

    def take(self, incident_id: str, who: str, time_s: float, note: str = "") -> Incident:
        """``open`` -> ``tracking`` without acknowledging a particular alert."""
        inc = self.incident(incident_id)
        if inc.status != "open":
            raise IncidentStateError(f"incident {incident_id} is {inc.status}, not open")
        what = "status open -> tracking" + (f": {note}" if note else "")
        return self._put(
            dataclasses.replace(
                inc,
                status="tracking",
                history=(*inc.history, (float(time_s), who, what)),
                updated_s=float(time_s),
            )
        )

    def resolve(self, incident_id: str, who: str, time_s: float, note: str = "") -> Incident:
        inc = self.incident(incident_id)
        if inc.status == "resolved":
            raise IncidentStateError(f"incident {incident_id} is already resolved")
        what = f"status {inc.status} -> resolved" + (f": {note}" if note else "")
        log.info("incident %s resolved by %s", incident_id, who)
        return self._put(
            dataclasses.replace(
                inc,
                status="resolved",
                history=(*inc.history, (float(time_s), who, what)),
                updated_s=float(time_s),
            )
        )

    def absorb(self, stored: Incident) -> Incident | None:
        """Take in an operator's change made by another process (an API worker wrote it to the
        store): the later status (open < tracking < resolved; never back) and the history entries
        this book lacks. Returns the merged incident, or None when unknown here or nothing new."""
        mine = self._incidents.get(stored.incident_id)
        if mine is None:
            return None
        seen = set(mine.history)
        extra = tuple(e for e in stored.history if e not in seen)
        status = mine.status
        if _STATUS_RANK.get(stored.status, 0) > _STATUS_RANK.get(status, 0):
            status = stored.status
        if not extra and status == mine.status:
            return None
        history = tuple(sorted((*mine.history, *extra), key=lambda e: float(e[0])))  # stable
        merged = dataclasses.replace(
            mine, status=status, history=history, updated_s=max(mine.updated_s, stored.updated_s)
        )
        return self._put(merged)

    def absorb_alert(self, stored: Alert) -> Alert | None:
        """Take in an acknowledgement made by another process (the first one stands). Returns the
        updated alert, or None when unknown here or nothing new."""
        mine = self._alerts.get(stored.alert_id)
        if mine is None or mine.acknowledged_by is not None or stored.acknowledged_by is None:
            return None
        mine = dataclasses.replace(
            mine, acknowledged_by=stored.acknowledged_by, acknowledged_s=stored.acknowledged_s
        )
        self._alerts[mine.alert_id] = mine
        return mine

    def number_from(self, number: int) -> None:
        """Number new incidents from at least ``number`` on (ids issued elsewhere are not reused)."""
        self._next_number = max(self._next_number, int(number))

    def _put(self, inc: Incident) -> Incident:
        self._incidents[inc.incident_id] = inc
        if inc.status in ACTIVE:
            for t in inc.track_ids:
                self._active_by_track[t] = inc.incident_id
        else:
            for t in inc.track_ids:
                if self._active_by_track.get(t) == inc.incident_id:
                    del self._active_by_track[t]
        return inc

    # ------------------------------------------------------------------ retention

    def prune(self, before_s: float, keep_track_ids: set[int] | frozenset[int] = frozenset()) -> int:
        """Forget what no longer matters, so a long-running book stays small: resolved incidents
        last changed before ``before_s`` (with their alerts), and de-duplication records older
        than that. Nothing about a track in ``keep_track_ids`` (still tracked) is forgotten, so
        it is not announced again. Returns how many entries were dropped."""
        dropped = 0
        for incident_id, inc in list(self._incidents.items()):
            if (
                inc.status != "resolved"
                or inc.updated_s >= before_s
                or keep_track_ids.intersection(inc.track_ids)
            ):
                continue
            del self._incidents[incident_id]
            self._opened_by.pop(incident_id, None)
            for alert_id in inc.alert_ids:
                self._alerts.pop(alert_id, None)
            dropped += 1
        for alert_id, alert in list(self._alerts.items()):
            if alert.incident_id is None and alert.time_s < before_s and alert.track_id not in keep_track_ids:
                del self._alerts[alert_id]
                dropped += 1
        for alert_id, fp in list(self._notified.items()):
            if (
                fp["time_s"] < before_s
                and fp.get("track_id") not in keep_track_ids
                and alert_id not in self._alerts
            ):
                del self._notified[alert_id]
                dropped += 1
        return dropped

    # ------------------------------------------------------------------ persistence

    def snapshot(self) -> dict[str, Any]:
        """The whole book as JSON-able data (for the store's ``save_state``)."""
        return {
            "version": 1,
            "prefix": self.prefix,
            "next_number": self._next_number,
            "incidents": [incident_to_json(i) for i in self._incidents.values()],
            "opened_by": dict(self._opened_by),
            "alerts": [alert_to_json(a) for a in self._alerts.values()],
            "notified": {k: dict(v) for k, v in self._notified.items()},
        }

    @classmethod
    def restore(cls, snapshot: Mapping[str, Any]) -> IncidentBook:
        if snapshot.get("version") != 1:
            raise ValueError(f"incident book snapshot: field 'version': {snapshot.get('version')!r} is not 1")
        book = cls(str(snapshot.get("prefix", "INC")))
        book._next_number = int(snapshot["next_number"])
        for doc in snapshot.get("incidents", []):
            book._put(incident_from_json(doc))
        book._opened_by = {str(k): str(v) for k, v in snapshot.get("opened_by", {}).items()}
        for doc in snapshot.get("alerts", []):
            a = alert_from_json(doc)
            book._alerts[a.alert_id] = a
        book._notified = {str(k): dict(v) for k, v in snapshot.get("notified", {}).items()}
        return book
