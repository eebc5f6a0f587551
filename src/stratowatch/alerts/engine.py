"""The alert engine: rules over all tracks x all geofences each step, grouped into incidents.

Rules (``Alert.rule``):

- ``geofence_enter`` / ``geofence_exit``: a track is now inside / no longer inside a circle or
  polygon geofence (area and altitude band). A track first seen inside counts as entering.
- ``predicted_entry``: the track's ensemble prediction gives probability >= ``p`` of entering
  a geofence within ``T`` hours; the alert carries the expected (median) entry time.
- ``new_unidentified``: a confirmed track classified balloon or unknown, with no identity that
  names it (ICAO address, APRS callsign, radiosonde serial, WSPR call), above
  ``new_object_min_alt_m`` and tracked for ``new_object_min_age_s``: opens a new incident --
  and, while another such incident is open, one titled "potential second incident".
- ``track_lost``: a track with an open incident has had no update for ``lost_after_s``
  (coasting) or was dropped by the tracker.
- ``border_crossing``: the track's last step crossed a border line, with the direction
  (``"CAN->USA"`` when the line's side labels are known) -- for unidentified objects and tracks
  an incident follows (identified airliners cross all day; ``border_crossing_identified`` adds them).

Inside/outside state is kept as a bool array ``(n_tracks, n_geofences)`` with a sorted array of
track ids, so enter/exit come from two array comparisons; only the few events become
:class:`~stratowatch.model.Alert` objects. De-duplication and incidents live in
:class:`~stratowatch.alerts.incidents.IncidentBook`: ``evaluate`` returns only alerts that are
new or materially changed.
"""

from __future__ import annotations

import logging
import math
import operator
import time
from collections.abc import Callable, Iterable, Mapping, Sequence
from dataclasses import dataclass, field
from datetime import UTC, datetime
from typing import Any

import numpy as np

from stratowatch.alerts.geofences import BoolArray, FloatArray, GeofenceIndex, IntArray
from stratowatch.alerts.incidents import IncidentBook
from stratowatch.model import Alert, Geofence, Incident, ObjectClass, Track, TrackStatus

log = logging.getLogger(__name__)

__all__ = ["AlertEngine", "RulesConfig"]

_STRIDE = 1 << 20  # geofences per engine are far fewer; track ids stay below 2**43

RULES = (
    "new_unidentified",
    "geofence_enter",
    "predicted_entry",
    "border_crossing",
    "geofence_exit",
    "track_lost",
)


@dataclass(frozen=True, slots=True)
class RulesConfig:
    """Thresholds of the rules (see the module docstring)."""

    predicted_entry_hours: float = 24.0
    predicted_entry_probability: float = 0.3
    new_object_min_alt_m: float = 15_000.0
    lost_after_s: float = 600.0
    #: line geofences that count as borders; empty: every line geofence is a border
    border_geofence_ids: tuple[str, ...] = ()
    #: side labels of border lines, ``{geofence_id: (left, right)}`` walking first -> last vertex
    border_sides: Mapping[str, tuple[str, str]] = field(default_factory=dict)
    #: identities that name an object (a track carrying one is not "unidentified")
    identified_prefixes: tuple[str, ...] = ("icao:", "aprs:", "sonde:", "wspr:")
    #: a track must be this old (since its first report) before it counts as a new object
    new_object_min_age_s: float = 120.0
    #: also alert border crossings of identified objects (airliners...) that no incident follows
    border_crossing_identified: bool = False
    #: material change thresholds for re-notification
    probability_change: float = 0.15
    entry_time_change_s: float = 3600.0
    #: a condition that ended and came back is notified again only after this long
    renotify_after_s: float = 600.0


@dataclass(slots=True)
class _Columns:
    """The per-track arrays one step works on (active tracks, sorted by id)."""

    ids: IntArray
    lat: FloatArray
    lon: FloatArray
    alt: FloatArray
    status: IntArray
    last_update: FloatArray
    label: IntArray
    label_probability: FloatArray
    first_time: FloatArray
    tracks: list[Track]


class AlertEngine:
    """Evaluates the rules each step; ``book`` holds incidents and de-duplication."""

    def __init__(
        self,
        geofences: Iterable[Geofence],
        rules: RulesConfig | None = None,
        clock: Callable[[], float] = time.time,
        *,
        book: IncidentBook | None = None,
    ) -> None:
        self.rules = rules or RulesConfig()
        self.clock = clock
        self.book = book or IncidentBook()
        self.last_incidents: list[Incident] = []
        self._index = GeofenceIndex(geofences)
        self._border = self._border_mask()
        self._ids: IntArray = np.empty(0, dtype=np.int64)
        #: sorted keys ``track_id * _STRIDE + geofence_index`` of the (track, geofence) pairs inside
        self._inside_keys: IntArray = np.empty(0, dtype=np.int64)
        self._lat: FloatArray = np.empty(0)
        self._lon: FloatArray = np.empty(0)

    # ------------------------------------------------------------------ geofences

    @property
    def geofences(self) -> tuple[Geofence, ...]:
        return self._index.geofences

    def set_geofences(self, geofences: Iterable[Geofence]) -> None:
        """Replace the geofences; the inside state of geofences kept (same id) is kept."""
        old = self._index
        self._index = GeofenceIndex(geofences)
        self._border = self._border_mask()
        remap = np.array([self._index.position.get(gid, -1) for gid in old.ids] + [-1], dtype=np.int64)
        g_new = remap[self._inside_keys % _STRIDE]
        keep = g_new >= 0
        self._inside_keys = np.sort((self._inside_keys // _STRIDE)[keep] * _STRIDE + g_new[keep])

    def _border_mask(self) -> BoolArray:
        wanted = set(self.rules.border_geofence_ids)
        return np.array(
            [g.kind == "line" and (not wanted or g.geofence_id in wanted) for g in self._index.geofences],
            dtype=bool,
        )

    # ------------------------------------------------------------------ operator actions

    def acknowledge(self, alert_id: str, who: str, time_s: float | None = None) -> Incident:
        return self.book.acknowledge(alert_id, who, self.clock() if time_s is None else time_s)

    def resolve(self, incident_id: str, who: str, time_s: float | None = None, note: str = "") -> Incident:
        return self.book.resolve(incident_id, who, self.clock() if time_s is None else time_s, note)

    def prune(self, before_s: float) -> int:
        """Drop resolved incidents and de-duplication records older than ``before_s`` about
        tracks no longer held (see :meth:`IncidentBook.prune`)."""
        return self.book.prune(before_s, set(self._ids.tolist()))

    # ------------------------------------------------------------------ evaluation

    def evaluate(
        self,
        time_s: float,
        tracks: Sequence[Track],
        predictions: Mapping[int, Mapping[str, Any]] | None = None,
    ) -> list[Alert]:
        """New or materially changed alerts for this step (each attached to its incident).
        The incidents changed by this step are in ``last_incidents`` afterwards."""
        cols = _columns(tracks)
        p_in, g_in = self._index.inside_pairs(cols.lat, cols.lon, cols.alt)
        keys = np.unique(cols.ids[p_in] * _STRIDE + g_in)
        prev_keys = self._inside_keys
        enter_keys = keys[~np.isin(keys, prev_keys, assume_unique=True)]
        leave_keys = prev_keys[~np.isin(prev_keys, keys, assume_unique=True)]
        leave_keys = leave_keys[np.isin(leave_keys // _STRIDE, cols.ids)]  # vanished tracks leave quietly

        m = self._ids.size
        pos = np.searchsorted(self._ids, cols.ids)
        pos_c = np.minimum(pos, max(m - 1, 0))
        have = (pos < m) & (self._ids[pos_c] == cols.ids) if m else np.zeros(cols.ids.size, dtype=bool)

        hv = np.flatnonzero(have)
        cross = self._index.crossings(
            self._lat[pos_c[hv]], self._lon[pos_c[hv]], cols.lat[hv], cols.lon[hv], cols.alt[hv]
        )
        on_border = self._border[cross.geofence_index]
        cross_rows = hv[cross.track_index[on_border]]
        cross_gf = cross.geofence_index[on_border]
        cross_ltr = cross.left_to_right[on_border]

        interest = np.isin(cols.ids, np.fromiter(self.book.active_track_ids(), dtype=np.int64))
        if not self.rules.border_crossing_identified and cross_rows.size:
            wanted = interest[cross_rows] | ~self._identified(cols, cross_rows)
            cross_rows, cross_gf, cross_ltr = cross_rows[wanted], cross_gf[wanted], cross_ltr[wanted]
        stale = (time_s - cols.last_update) > self.rules.lost_after_s
        lost_rows = np.flatnonzero(interest & stale)
        fresh_rows = np.flatnonzero(interest & ~stale)
        vanished = self._ids[~np.isin(self._ids, cols.ids)]
        vanished = vanished[np.isin(vanished, np.fromiter(self.book.active_track_ids(), dtype=np.int64))]

        candidate = np.flatnonzero(
            (cols.status == int(TrackStatus.CONFIRMED))
            & ((cols.label == int(ObjectClass.BALLOON)) | (cols.label == int(ObjectClass.UNKNOWN)))
            & (cols.alt > self.rules.new_object_min_alt_m)
            & (time_s - cols.first_time >= self.rules.new_object_min_age_s)
        )
        unidentified = candidate[~self._identified(cols, candidate)]

        self._ids, self._inside_keys, self._lat, self._lon = cols.ids, keys, cols.lat, cols.lon

        changed: dict[str, Incident] = {}
        out: list[Alert] = []

        def emit(alert: Alert) -> None:
            routed = self._route(alert, changed)
            if routed is not None:
                out.append(routed)

        for r in unidentified.tolist():
            emit(self._new_unidentified(time_s, cols, r))
        enter_rows = np.searchsorted(cols.ids, enter_keys // _STRIDE)
        for r, g in zip(enter_rows.tolist(), (enter_keys % _STRIDE).tolist(), strict=True):
            self.book.rearm(f"geofence_exit:{cols.ids[r]}:{self._index.ids[g]}")
            emit(self._enter(time_s, cols, r, g))
        for alert in self._predicted(time_s, cols, keys, predictions or {}):
            emit(alert)
        for r, g, ltr in zip(cross_rows, cross_gf, cross_ltr, strict=True):
            emit(self._crossing(time_s, cols, int(r), int(g), bool(ltr)))
        leave_rows = np.searchsorted(cols.ids, leave_keys // _STRIDE)
        for r, g in zip(leave_rows.tolist(), (leave_keys % _STRIDE).tolist(), strict=True):
            self.book.rearm(f"geofence_enter:{cols.ids[r]}:{self._index.ids[g]}")
            emit(self._exit(time_s, cols, r, g))
        for r in fresh_rows:
            self.book.rearm(f"track_lost:{cols.ids[r]}")
        for r in lost_rows:
            tid = int(cols.ids[r])
            age = time_s - float(cols.last_update[r])
            emit(
                Alert(
                    alert_id=f"track_lost:{tid}",
                    time_s=time_s,
                    rule="track_lost",
                    severity="warning",
                    message=f"Track T{tid} lost: no update for {age / 60.0:.0f} min (coasting)",
                    track_id=tid,
                    details={"seconds_since_update": round(age, 1), **_where(cols, int(r))},
                )
            )
        for tid in vanished.tolist():
            emit(
                Alert(
                    alert_id=f"track_lost:{tid}",
                    time_s=time_s,
                    rule="track_lost",
                    severity="warning",
                    message=f"Track T{tid} lost: dropped by the tracker",
                    track_id=int(tid),
                    details={"dropped": True},
                )
            )
        self.last_incidents = list(changed.values())
        return out

    def _route(self, alert: Alert, changed: dict[str, Incident]) -> Alert | None:
        """De-duplicate, then attach to the track's incident (opening one when the rule warrants)."""
        reason = self.book.should_notify(
            alert,
            probability_delta=self.rules.probability_change,
            entry_shift_s=self.rules.entry_time_change_s,
            rearm_after_s=self.rules.renotify_after_s,
        )
        if reason is None:
            return None
        inc = self.book.active_for_track(alert.track_id) if alert.track_id is not None else None
        if inc is None:
            if alert.rule in ("geofence_exit", "track_lost"):
                return None  # only news for an object someone is following
            title = alert.message
            if alert.rule == "new_unidentified":
                others = self.book.active_opened_by("new_unidentified")
                if others:
                    also = ", ".join(i.incident_id for i in others)
                    title += f" — potential second incident (also open: {also})"
            inc = self.book.open(
                alert.time_s,
                title,
                track_ids=() if alert.track_id is None else (alert.track_id,),
                rule=alert.rule,
            )
        inc = self.book.add_alert(inc.incident_id, alert, reason)
        self.book.mark_notified(alert)
        changed[inc.incident_id] = inc
        routed = self.book.alert(alert.alert_id)
        log.info("alert %s [%s] %s (%s)", routed.alert_id, routed.severity, routed.message, reason)
        return routed

    def _identified(self, cols: _Columns, rows: IntArray) -> BoolArray:
        """Whether each of ``rows`` carries an identity that names it (a few rows per step)."""
        prefixes = tuple(self.rules.identified_prefixes)
        return np.array(
            [any(i.startswith(prefixes) for i in cols.tracks[r].identities) for r in rows.tolist()],
            dtype=bool,
        )

    # ------------------------------------------------------------------ alert builders

    def _new_unidentified(self, time_s: float, cols: _Columns, r: int) -> Alert:
        tid = int(cols.ids[r])
        label = ObjectClass(int(cols.label[r])).name.lower()
        p = float(cols.label_probability[r])
        alt_km = float(cols.alt[r]) / 1000.0
        p_text = f" {p:.2f}" if math.isfinite(p) else ""
        return Alert(
            alert_id=f"new_unidentified:{tid}",
            time_s=time_s,
            rule="new_unidentified",
            severity="critical",
            message=f"Unidentified high-altitude object T{tid} ({alt_km:.1f} km, {label}{p_text})",
            track_id=tid,
            details={"label": label, "probability_label": _finite(p), **_where(cols, r)},
        )

    def _enter(self, time_s: float, cols: _Columns, r: int, g: int) -> Alert:
        gf = self._index.geofences[g]
        tid = int(cols.ids[r])
        return Alert(
            alert_id=f"geofence_enter:{tid}:{gf.geofence_id}",
            time_s=time_s,
            rule="geofence_enter",
            severity=gf.severity,
            message=f"T{tid} entered {gf.name} ({cols.alt[r] / 1000.0:.1f} km)",
            track_id=tid,
            geofence_id=gf.geofence_id,
            details=_where(cols, r),
        )

    def _exit(self, time_s: float, cols: _Columns, r: int, g: int) -> Alert:
        gf = self._index.geofences[g]
        tid = int(cols.ids[r])
        return Alert(
            alert_id=f"geofence_exit:{tid}:{gf.geofence_id}",
            time_s=time_s,
            rule="geofence_exit",
            severity="info",
            message=f"T{tid} left {gf.name}",
            track_id=tid,
            geofence_id=gf.geofence_id,
            details=_where(cols, r),
        )

    def _crossing(self, time_s: float, cols: _Columns, r: int, g: int, left_to_right: bool) -> Alert:
        gf = self._index.geofences[g]
        tid = int(cols.ids[r])
        left, right = self.rules.border_sides.get(gf.geofence_id, ("left", "right"))
        src, dst = (left, right) if left_to_right else (right, left)
        return Alert(
            alert_id=f"border_crossing:{tid}:{gf.geofence_id}:{src}->{dst}",
            time_s=time_s,
            rule="border_crossing",
            severity=gf.severity,
            message=f"T{tid} crossed {gf.name} ({src}->{dst}) at {cols.lat[r]:.2f}, {cols.lon[r]:.2f}",
            track_id=tid,
            geofence_id=gf.geofence_id,
            details={"from": src, "to": dst, "direction": f"{src}->{dst}", **_where(cols, r)},
        )

    def _predicted(
        self,
        time_s: float,
        cols: _Columns,
        inside_keys: IntArray,
        predictions: Mapping[int, Mapping[str, Any]],
    ) -> list[Alert]:
        out = []
        horizon_s = self.rules.predicted_entry_hours * 3600.0
        for track_key, payload in predictions.items():
            tid = int(track_key)
            r = int(np.searchsorted(cols.ids, tid))
            if r >= cols.ids.size or cols.ids[r] != tid:
                continue
            for arrival in payload.get("arrivals", ()):
                gid = str(arrival.get("geofence_id"))
                key = f"predicted_entry:{tid}:{gid}"
                p = _float_or_nan(arrival.get("probability"))
                earliest = _float_or_nan(arrival.get("earliest_s"))
                median = _float_or_nan(arrival.get("median_s"))
                expected = median if math.isfinite(median) else earliest
                g = self._index.position.get(gid)
                already_inside = g is not None and _contains(inside_keys, int(tid) * _STRIDE + g)
                if not (
                    p >= self.rules.predicted_entry_probability
                    and math.isfinite(expected)
                    and (earliest if math.isfinite(earliest) else expected) - time_s <= horizon_s
                    and not already_inside
                ):
                    self.book.rearm(key)
                    continue
                gf = self._index.geofences[g] if g is not None else None
                name = gf.name if gf is not None else gid
                when = datetime.fromtimestamp(expected, UTC).strftime("%Y-%m-%d %H:%M UTC")
                out.append(
                    Alert(
                        alert_id=key,
                        time_s=time_s,
                        rule="predicted_entry",
                        severity=gf.severity if gf is not None else "warning",
                        message=(
                            f"T{tid} predicted to enter {name} with probability {p:.2f}, "
                            f"expected {when} (in {(expected - time_s) / 3600.0:.1f} h)"
                        ),
                        track_id=int(tid),
                        geofence_id=gid,
                        details={
                            "probability": round(p, 4),
                            "expected_entry_s": expected,
                            "earliest_entry_s": _finite(earliest),
                            "hours_to_entry": round((expected - time_s) / 3600.0, 2),
                            **_where(cols, r),
                        },
                    )
                )
        return out

    # ------------------------------------------------------------------ persistence

    def snapshot(self) -> dict[str, Any]:
        """Book and per-track state, JSON-able (the pipeline persists it via ``Store.save_state``)."""
        return {
            "book": self.book.snapshot(),
            "track_ids": self._ids.tolist(),
            "lat_deg": self._lat.tolist(),
            "lon_deg": self._lon.tolist(),
            "inside": {
                gid: (self._inside_keys[self._inside_keys % _STRIDE == j] // _STRIDE).tolist()
                for j, gid in enumerate(self._index.ids)
                if np.any(self._inside_keys % _STRIDE == j)
            },
        }

    def restore(self, snapshot: Mapping[str, Any]) -> None:
        self.book = IncidentBook.restore(snapshot["book"])
        self._ids = np.asarray(snapshot.get("track_ids", []), dtype=np.int64)
        self._lat = np.asarray(snapshot.get("lat_deg", []), dtype=np.float64)
        self._lon = np.asarray(snapshot.get("lon_deg", []), dtype=np.float64)
        keys = [
            np.asarray(ids, dtype=np.int64) * _STRIDE + self._index.position[gid]
            for gid, ids in snapshot.get("inside", {}).items()
            if gid in self._index.position
        ]
        self._inside_keys = np.unique(np.concatenate(keys)) if keys else np.empty(0, dtype=np.int64)


def _columns(tracks: Sequence[Track]) -> _Columns:
    """One pass over the Track objects into arrays (the only per-track Python work of a step)."""
    active = [t for t in tracks if t.status == TrackStatus.CONFIRMED or t.status == TrackStatus.COASTING]
    active.sort(key=_track_id)
    n = len(active)
    unknown = int(ObjectClass.UNKNOWN)
    table = np.array(list(map(_NUMERIC_FIELDS, active)), dtype=np.float64).reshape(n, 6)
    status = np.fromiter(map(int, map(_STATUS, active)), np.int64, n)
    classes = list(map(_CLASSIFICATION, active))
    label = np.array([unknown if c is None else c.label for c in classes], dtype=np.int64)
    label_probability = np.array(
        [math.nan if c is None else c.probability for c in classes], dtype=np.float64
    )
    ids = table[:, 0].astype(np.int64)
    return _Columns(
        ids=ids,
        lat=table[:, 1].copy(),
        lon=table[:, 2].copy(),
        alt=table[:, 3].copy(),
        status=status,
        last_update=table[:, 4].copy(),
        label=label,
        label_probability=label_probability,
        first_time=table[:, 5].copy(),
        tracks=active,
    )


_track_id = operator.attrgetter("track_id")
_NUMERIC_FIELDS = operator.attrgetter(
    "track_id", "lat_deg", "lon_deg", "alt_m", "last_update_s", "first_time_s"
)
_STATUS = operator.attrgetter("status")
_CLASSIFICATION = operator.attrgetter("classification")


def _contains(sorted_keys: IntArray, key: int) -> bool:
    i = int(np.searchsorted(sorted_keys, key))
    return i < sorted_keys.size and int(sorted_keys[i]) == key


def _where(cols: _Columns, r: int) -> dict[str, object]:
    return {
        "lat_deg": round(float(cols.lat[r]), 5),
        "lon_deg": round(float(cols.lon[r]), 5),
        "alt_m": _finite(round(float(cols.alt[r]), 1)),
    }


def _finite(x: float) -> float | None:
    return float(x) if math.isfinite(x) else None


def _float_or_nan(v: object) -> float:
    if isinstance(v, int | float) and not isinstance(v, bool):
        return float(v)
    return math.nan
