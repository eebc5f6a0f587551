"""Rows <-> model values, shared by both backends (private: the public JSON forms of the model
are ``stratowatch.service.serialize``; these are storage forms and may change with the schema).

Float columns hold NaN as NULL (SQLite cannot store NaN) and read NULL back as NaN. JSON
documents keep non-finite floats (``Infinity``, ``NaN``) so every value round-trips exactly.
"""

from __future__ import annotations

import functools
import json
import math
from collections.abc import Mapping, Sequence
from dataclasses import fields
from typing import Any

import numpy as np
import orjson

from stratowatch import geo
from stratowatch.model import (
    Alert,
    Classification,
    Geofence,
    Incident,
    MeasurementKind,
    ObjectClass,
    Observation,
    Sensor,
    SourceRef,
    Track,
    TrackStatus,
)

Row = Sequence[Any]

OBS_COLUMNS = (
    "time_s, sensor_id, kind, v0, v1, v2, s0, s1, s2, vel_e, vel_n, vel_u, vel_sigma, "
    "identity, callsign, category, releasable_to, originator, source, source_position, lat_deg, lon_deg"
)
OBS_NCOLS = len(OBS_COLUMNS.split(","))

TRACK_COLUMNS = (
    "time_s, status, lat_deg, lon_deg, alt_m, vel_e, vel_n, vel_u, sigma_e, sigma_n, sigma_u, "
    "model_probabilities, identities, sensors, first_time_s, last_update_s, n_updates, "
    "cls_label, classification, releasable_to, audience, originator"
)
TRACK_NCOLS = len(TRACK_COLUMNS.split(","))

ALERT_COLUMNS = (
    "alert_id, time_s, rule, severity, message, track_id, geofence_id, incident_id, "
    "acknowledged_by, acknowledged_s, details, releasable_to, audience, originator"
)
INCIDENT_COLUMNS = (
    "incident_id, opened_s, updated_s, status, title, track_ids, alert_ids, history, "
    "releasable_to, audience, originator"
)

_POSITIONED = (MeasurementKind.GEODETIC, MeasurementKind.GROUND_2D)


def dumps(value: Any) -> str:
    return json.dumps(value, separators=(",", ":"), sort_keys=True)


def _num(x: float | None) -> float | None:
    """A float for a column: NaN becomes NULL."""
    if x is None:
        return None
    f = float(x)
    return None if math.isnan(f) else f


def _nan(x: Any) -> float:
    return math.nan if x is None else float(x)


def _opt_str(x: Any) -> str | None:
    return None if x is None else str(x)


@functools.lru_cache(maxsize=256)
def _labels(values: frozenset[str]) -> str:
    """Releasability labels as a sorted JSON list (cached: a feed repeats the same few sets)."""
    return dumps(sorted(values))


def labels(values: frozenset[str]) -> str:
    """A releasability label as stored (a sorted JSON list)."""
    return _labels(frozenset(values))


# --------------------------------------------------------------------------- observations


def _pad(values: Sequence[float]) -> tuple[float | None, ...]:
    if len(values) == 3:
        return (float(values[0]), float(values[1]), float(values[2]))
    return (*(float(v) for v in values), *((None,) * (3 - len(values))))


def obs_row(o: Observation) -> tuple[Any, ...]:
    vel = o.velocity_enu_mps
    located = o.kind in _POSITIONED
    vs = o.velocity_sigma_mps
    return (
        float(o.time_s),
        o.sensor_id,
        int(o.kind),
        *_pad(o.value),
        *_pad(o.sigma),
        *((None, None, None) if vel is None else (float(vel[0]), float(vel[1]), float(vel[2]))),
        None if vs != vs else float(vs),  # NaN -> NULL
        o.identity,
        o.callsign,
        o.category,
        _labels(o.releasable_to),
        o.originator,
        o.source.source if o.source else None,
        o.source.position if o.source else None,
        float(o.value[0]) if located else None,
        float(o.value[1]) if located else None,
    )


def row_obs(r: Row) -> Observation:
    return Observation(
        float(r[0]),
        str(r[1]),
        MeasurementKind(int(r[2])),
        tuple(float(v) for v in r[3:6] if v is not None),
        tuple(float(v) for v in r[6:9] if v is not None),
        velocity_enu_mps=None if r[9] is None else (float(r[9]), float(r[10]), float(r[11])),
        velocity_sigma_mps=_nan(r[12]),
        identity=_opt_str(r[13]),
        callsign=_opt_str(r[14]),
        category=_opt_str(r[15]),
        releasable_to=frozenset(json.loads(r[16])),
        originator=str(r[17]),
        source=None if r[18] is None else SourceRef(str(r[18]), int(r[19])),
    )


_POLAR = (MeasurementKind.POLAR, MeasurementKind.POLAR_HEIGHT)

#: A sensor's site: (lat_deg, lon_deg, alt_m).
Site = tuple[float, float, float]


def locate_polar(
    rows: list[tuple[Any, ...]], observations: Sequence[Observation], sites: Mapping[str, Site]
) -> None:
    """Fill the lat/lon of radar plots whose sensor site is known, in place (vectorised)."""
    index = [i for i, o in enumerate(observations) if o.kind in _POLAR and o.sensor_id in sites]
    if not index:
        return
    value = np.array([observations[i].value for i in index], dtype=np.float64)
    site = np.array([sites[observations[i].sensor_id] for i in index], dtype=np.float64)
    height = np.array([observations[i].kind == MeasurementKind.POLAR_HEIGHT for i in index])
    polar = value.copy()
    polar[height, 2] = geo.elevation_for_altitude(value[height, 0], value[height, 2], site[height, 2])
    lla = geo.ecef_to_geodetic(geo.polar_to_ecef(polar, site[:, 0], site[:, 1], site[:, 2]))
    for k, i in enumerate(index):
        rows[i] = (*rows[i][:-2], float(lla[k, 0]), float(lla[k, 1]))


# --------------------------------------------------------------------------- tracks


def _fast(value: Any) -> str:
    """JSON of a track row's small documents (orjson: a 50,000-track step writes 200,000 of them);
    the same text as :func:`dumps` but for the spelling of some floats (``1e-5``), and NaN is
    ``null`` (read back as NaN)."""
    return orjson.dumps(value, option=orjson.OPT_SORT_KEYS).decode()


@functools.lru_cache(maxsize=4096)
def _strings(values: tuple[str, ...]) -> str:
    """A track's identities or sensors as JSON (cached: the same few tuples repeat)."""
    return _fast(values)


def _float(v: Any) -> float:
    return math.nan if v is None else float(v)


def track_row(t: Track) -> tuple[Any, ...]:
    c = t.classification
    cls_doc = (
        None
        if c is None
        else _fast(
            {
                "label": int(c.label),
                "probability": float(c.probability),
                "probabilities": {str(k): float(v) for k, v in c.probabilities.items()},
                "reasons": list(c.reasons),
            }
        )
    )
    return (
        float(t.time_s),
        int(t.status),
        _num(t.lat_deg),
        _num(t.lon_deg),
        _num(t.alt_m),
        *(_num(v) for v in t.velocity_enu_mps),
        *(_num(v) for v in t.position_sigma_m),
        _fast({str(k): float(v) for k, v in t.model_probabilities.items()}),
        _strings(tuple(t.identities)),
        _strings(tuple(t.sensors)),
        float(t.first_time_s),
        float(t.last_update_s),
        int(t.n_updates),
        None if c is None else int(c.label),
        cls_doc,
        _labels(t.releasable_to),
        t.audience,
        t.originator,
    )


def row_track(track_id: Any, r: Row) -> Track:
    """A Track from ``track_id`` and the TRACK_COLUMNS of a row."""
    cls = None
    if r[18] is not None:
        d = json.loads(r[18])
        cls = Classification(
            ObjectClass(int(d["label"])),
            _float(d["probability"]),
            {str(k): _float(v) for k, v in d["probabilities"].items()},
            tuple(str(x) for x in d["reasons"]),
        )
    return Track(
        track_id=int(track_id),
        time_s=float(r[0]),
        status=TrackStatus(int(r[1])),
        lat_deg=_nan(r[2]),
        lon_deg=_nan(r[3]),
        alt_m=_nan(r[4]),
        velocity_enu_mps=(_nan(r[5]), _nan(r[6]), _nan(r[7])),
        position_sigma_m=(_nan(r[8]), _nan(r[9]), _nan(r[10])),
        model_probabilities={str(k): _float(v) for k, v in json.loads(r[11]).items()},
        identities=tuple(str(x) for x in json.loads(r[12])),
        sensors=tuple(str(x) for x in json.loads(r[13])),
        first_time_s=float(r[14]),
        last_update_s=float(r[15]),
        n_updates=int(r[16]),
        classification=cls,
        releasable_to=frozenset(json.loads(r[19])),
        audience=str(r[20]),
        originator=str(r[21]),
    )


# --------------------------------------------------------------------------- alerts, incidents


def alert_row(a: Alert) -> tuple[Any, ...]:
    return (
        a.alert_id,
        float(a.time_s),
        a.rule,
        a.severity,
        a.message,
        None if a.track_id is None else int(a.track_id),
        a.geofence_id,
        a.incident_id,
        a.acknowledged_by,
        None if a.acknowledged_s is None else float(a.acknowledged_s),
        dumps(dict(a.details)),
        _labels(a.releasable_to),
        a.audience,
        a.originator,
    )


def row_alert(r: Row) -> Alert:
    return Alert(
        alert_id=str(r[0]),
        time_s=float(r[1]),
        rule=str(r[2]),
        severity=str(r[3]),
        message=str(r[4]),
        track_id=None if r[5] is None else int(r[5]),
        geofence_id=_opt_str(r[6]),
        incident_id=_opt_str(r[7]),
        acknowledged_by=_opt_str(r[8]),
        acknowledged_s=None if r[9] is None else float(r[9]),
        details=json.loads(r[10]),
        releasable_to=frozenset(json.loads(r[11])),
        audience=str(r[12]),
        originator=str(r[13]),
    )


def incident_row(i: Incident) -> tuple[Any, ...]:
    return (
        i.incident_id,
        float(i.opened_s),
        float(i.updated_s),
        i.status,
        i.title,
        dumps([int(t) for t in i.track_ids]),
        dumps(list(i.alert_ids)),
        dumps([[float(t), str(who), str(what)] for t, who, what in i.history]),
        _labels(i.releasable_to),
        i.audience,
        i.originator,
    )


def row_incident(r: Row) -> Incident:
    return Incident(
        incident_id=str(r[0]),
        opened_s=float(r[1]),
        updated_s=float(r[2]),
        status=str(r[3]),
        title=str(r[4]),
        track_ids=tuple(int(t) for t in json.loads(r[5])),
        alert_ids=tuple(str(a) for a in json.loads(r[6])),
        history=tuple((float(t), str(who), str(what)) for t, who, what in json.loads(r[7])),
        releasable_to=frozenset(json.loads(r[8])),
        audience=str(r[9]),
        originator=str(r[10]),
    )


# --------------------------------------------------------------------------- sensors, geofences


def _doc(value: Sensor | Geofence) -> dict[str, Any]:
    out: dict[str, Any] = {}
    for f in fields(value):
        v = getattr(value, f.name)
        if isinstance(v, frozenset):
            v = sorted(v)
        out[f.name] = v
    return out


def sensor_body(s: Sensor) -> str:
    return dumps(_doc(s))


def body_sensor(text: str) -> Sensor:
    d = json.loads(text)
    d["releasable_to"] = frozenset(d["releasable_to"])
    site = d.get("site_releasable_to")
    d["site_releasable_to"] = None if site is None else frozenset(site)
    return Sensor(**d)


def geofence_body(g: Geofence) -> str:
    d = _doc(g)
    d["coordinates"] = [[float(a), float(b)] for a, b in g.coordinates]
    return dumps(d)


def body_geofence(text: str) -> Geofence:
    d = json.loads(text)
    d["releasable_to"] = frozenset(d["releasable_to"])
    d["coordinates"] = tuple((float(a), float(b)) for a, b in d["coordinates"])
    return Geofence(**d)


def json_doc(value: Mapping[str, Any]) -> str:
    return dumps(dict(value))
