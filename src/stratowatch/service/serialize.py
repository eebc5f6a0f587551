"""JSON forms of the model: what the bus carries, the API returns and the store may keep.

Every ``*_to_json`` returns plain ``dict``/``list``/``str``/``float``/``int``/``None`` values
that ``json.dumps`` accepts with ``allow_nan=False``: non-finite floats (an unknown sensor site,
an unbounded geofence altitude, an unknown velocity accuracy) become ``null`` and come back as
the dataclass's own default meaning (NaN, -inf or +inf) in the matching ``*_from_json``. Enums are
lower-case names (``"confirmed"``, ``"balloon"``, ``"geodetic"``); releasability labels are
sorted lists. ``x_from_json(x_to_json(v)) == v`` for every value of the model (tests check it).
"""

from __future__ import annotations

import math
from collections.abc import Mapping, Sequence
from typing import Any

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

JsonDict = dict[str, Any]


class SerializeError(ValueError):
    """A JSON document does not describe a model value; the message names the field."""


def _num(value: float) -> float | None:
    return float(value) if math.isfinite(value) else None


def _float(doc: Mapping[str, Any], key: str, missing: float | None = None) -> float:
    v = doc.get(key)
    if v is None:
        if missing is not None:
            return missing
        raise SerializeError(f"field {key!r}: required number")
    if isinstance(v, bool) or not isinstance(v, int | float):
        raise SerializeError(f"field {key!r}: not a number: {v!r}")
    return float(v)


def _req(doc: Mapping[str, Any], key: str) -> Any:
    if key not in doc:
        raise SerializeError(f"field {key!r}: required")
    return doc[key]


def _labels(values: Sequence[str] | None) -> frozenset[str]:
    """A label from JSON: absent is PUBLIC; an empty list is releasable to nobody else."""
    return frozenset(values) if values is not None else frozenset({"PUBLIC"})


_NAMES: dict[Any, str] = {
    e: e.name.lower() for cls in (TrackStatus, ObjectClass, MeasurementKind) for e in cls
}


def _enum_name(e: TrackStatus | ObjectClass | MeasurementKind) -> str:
    return _NAMES.get((type(e), e)) or e.name.lower()  # a dict lookup: Enum.name is a slow property


def _enum(cls: type[TrackStatus] | type[ObjectClass] | type[MeasurementKind], value: Any, key: str) -> Any:
    try:
        return cls[str(value).upper()]
    except KeyError:
        names = ", ".join(m.name.lower() for m in cls)
        raise SerializeError(f"field {key!r}: {value!r} is not one of {names}") from None


# --------------------------------------------------------------------------- classification, track


def classification_to_json(c: Classification) -> JsonDict:
    return {
        "label": _enum_name(c.label),
        "probability": float(c.probability),
        "probabilities": {k: float(v) for k, v in c.probabilities.items()},
        "reasons": list(c.reasons),
    }


def classification_from_json(doc: Mapping[str, Any]) -> Classification:
    return Classification(
        label=_enum(ObjectClass, _req(doc, "label"), "label"),
        probability=_float(doc, "probability"),
        probabilities={str(k): float(v) for k, v in dict(doc.get("probabilities") or {}).items()},
        reasons=tuple(str(r) for r in doc.get("reasons") or ()),
    )


def track_to_json(t: Track) -> JsonDict:
    e, n, u = t.velocity_enu_mps
    return {
        "track_id": int(t.track_id),
        "time_s": float(t.time_s),
        "status": _enum_name(t.status),
        "lat_deg": float(t.lat_deg),
        "lon_deg": float(t.lon_deg),
        "alt_m": float(t.alt_m),
        "velocity_enu_mps": [float(e), float(n), float(u)],
        "speed_mps": float(math.hypot(e, n)),
        "position_sigma_m": [float(s) for s in t.position_sigma_m],
        "velocity_sigma_mps": None
        if t.velocity_sigma_mps is None
        else [float(s) for s in t.velocity_sigma_mps],
        "model_probabilities": {k: float(v) for k, v in t.model_probabilities.items()},
        "identities": list(t.identities),
        "sensors": list(t.sensors),
        "first_time_s": float(t.first_time_s),
        "last_update_s": float(t.last_update_s),
        "n_updates": int(t.n_updates),
        "classification": classification_to_json(t.classification) if t.classification else None,
        "releasable_to": sorted(t.releasable_to),
        "audience": t.audience,
        "originator": t.originator,
    }


def _triple(doc: Mapping[str, Any], key: str) -> tuple[float, float, float]:
    v = _req(doc, key)
    if not isinstance(v, list | tuple) or len(v) != 3:
        raise SerializeError(f"field {key!r}: needs three numbers")
    return (float(v[0]), float(v[1]), float(v[2]))


def track_from_json(doc: Mapping[str, Any]) -> Track:
    cls = doc.get("classification")
    return Track(
        track_id=int(_req(doc, "track_id")),
        time_s=_float(doc, "time_s"),
        status=_enum(TrackStatus, _req(doc, "status"), "status"),
        lat_deg=_float(doc, "lat_deg"),
        lon_deg=_float(doc, "lon_deg"),
        alt_m=_float(doc, "alt_m"),
        velocity_enu_mps=_triple(doc, "velocity_enu_mps"),
        position_sigma_m=_triple(doc, "position_sigma_m"),
        model_probabilities={str(k): float(v) for k, v in dict(doc.get("model_probabilities") or {}).items()},
        identities=tuple(str(i) for i in doc.get("identities") or ()),
        sensors=tuple(str(s) for s in doc.get("sensors") or ()),
        first_time_s=_float(doc, "first_time_s"),
        last_update_s=_float(doc, "last_update_s"),
        n_updates=int(_req(doc, "n_updates")),
        classification=classification_from_json(cls) if cls else None,
        releasable_to=_labels(doc.get("releasable_to")),
        audience=str(doc.get("audience", "")),
        originator=str(doc.get("originator", "")),
        velocity_sigma_mps=_triple(doc, "velocity_sigma_mps")
        if doc.get("velocity_sigma_mps") is not None
        else None,
    )


# --------------------------------------------------------------------------- observation, sensor


def observation_to_json(o: Observation) -> JsonDict:
    return {
        "time_s": float(o.time_s),
        "sensor_id": o.sensor_id,
        "kind": _enum_name(o.kind),
        "value": [float(v) for v in o.value],
        "sigma": [float(s) for s in o.sigma],
        "velocity_enu_mps": [float(v) for v in o.velocity_enu_mps]
        if o.velocity_enu_mps is not None
        else None,
        "velocity_sigma_mps": _num(o.velocity_sigma_mps),
        "identity": o.identity,
        "callsign": o.callsign,
        "category": o.category,
        "releasable_to": sorted(o.releasable_to),
        "originator": o.originator,
        "source": {"source": o.source.source, "position": o.source.position} if o.source else None,
    }


def observation_from_json(doc: Mapping[str, Any]) -> Observation:
    vel = doc.get("velocity_enu_mps")
    src = doc.get("source")
    try:
        return Observation(
            time_s=_float(doc, "time_s"),
            sensor_id=str(_req(doc, "sensor_id")),
            kind=_enum(MeasurementKind, _req(doc, "kind"), "kind"),
            value=tuple(float(v) for v in _req(doc, "value")),
            sigma=tuple(float(s) for s in _req(doc, "sigma")),
            velocity_enu_mps=(float(vel[0]), float(vel[1]), float(vel[2])) if vel is not None else None,
            velocity_sigma_mps=_float(doc, "velocity_sigma_mps", math.nan),
            identity=doc.get("identity"),
            callsign=doc.get("callsign"),
            category=doc.get("category"),
            releasable_to=_labels(doc.get("releasable_to")),
            originator=str(doc.get("originator") or ""),
            source=SourceRef(str(src["source"]), int(src.get("position", 0))) if src else None,
        )
    except ValueError as exc:
        if isinstance(exc, SerializeError):
            raise
        raise SerializeError(f"observation: {exc}") from None


_SENSOR_NAN = ("lat_deg", "lon_deg")
_SENSOR_FLOATS = (
    "alt_m",
    "max_range_m",
    "max_elevation_deg",
    "p_detect",
    "sigma_range_m",
    "sigma_azimuth_deg",
    "sigma_elevation_deg",
    "sigma_h_m",
    "sigma_v_m",
    "update_period_s",
)


def sensor_to_json(s: Sensor) -> JsonDict:
    doc: JsonDict = {"sensor_id": s.sensor_id, "owner": s.owner, "kind": s.kind, "name": s.name}
    for key in _SENSOR_NAN + _SENSOR_FLOATS:
        doc[key] = _num(getattr(s, key))
    doc["releasable_to"] = sorted(s.releasable_to)
    doc["site_releasable_to"] = None if s.site_releasable_to is None else sorted(s.site_releasable_to)
    return doc


def sensor_from_json(doc: Mapping[str, Any]) -> Sensor:
    kwargs: dict[str, Any] = {
        "sensor_id": str(_req(doc, "sensor_id")),
        "owner": str(doc.get("owner", "LOCAL")),
        "kind": str(doc.get("kind", "generic")),
        "name": str(doc.get("name", "")),
        "releasable_to": _labels(doc.get("releasable_to")),
        "site_releasable_to": None
        if doc.get("site_releasable_to") is None
        else _labels(doc["site_releasable_to"]),
    }
    defaults = Sensor(sensor_id="_")
    for key in _SENSOR_NAN + _SENSOR_FLOATS:
        kwargs[key] = _float(doc, key, getattr(defaults, key))
    return Sensor(**kwargs)


# --------------------------------------------------------------------------- geofence, alert, incident


def geofence_to_json(g: Geofence) -> JsonDict:
    return {
        "geofence_id": g.geofence_id,
        "name": g.name,
        "kind": g.kind,
        "coordinates": [[float(lat), float(lon)] for lat, lon in g.coordinates],
        "radius_m": float(g.radius_m),
        "min_alt_m": _num(g.min_alt_m),
        "max_alt_m": _num(g.max_alt_m),
        "severity": g.severity,
        "source": g.source,
        "releasable_to": sorted(g.releasable_to),
    }


def geofence_from_json(doc: Mapping[str, Any]) -> Geofence:
    kind = str(_req(doc, "kind"))
    if kind not in ("circle", "polygon", "line"):
        raise SerializeError(f"field 'kind': {kind!r} is not one of circle, polygon, line")
    coords = _req(doc, "coordinates")
    if not isinstance(coords, list) or not all(isinstance(c, list | tuple) and len(c) == 2 for c in coords):
        raise SerializeError("field 'coordinates': a list of [lat_deg, lon_deg] pairs")
    return Geofence(
        geofence_id=str(_req(doc, "geofence_id")),
        name=str(doc.get("name", "")),
        kind=kind,
        coordinates=tuple((float(c[0]), float(c[1])) for c in coords),
        radius_m=_float(doc, "radius_m", 0.0),
        min_alt_m=_float(doc, "min_alt_m", -math.inf),
        max_alt_m=_float(doc, "max_alt_m", math.inf),
        severity=str(doc.get("severity", "warning")),
        source=str(doc.get("source", "")),
        releasable_to=_labels(doc.get("releasable_to")),
    )


def alert_to_json(a: Alert) -> JsonDict:
    return {
        "alert_id": a.alert_id,
        "time_s": float(a.time_s),
        "rule": a.rule,
        "severity": a.severity,
        "message": a.message,
        "track_id": a.track_id,
        "geofence_id": a.geofence_id,
        "details": dict(a.details),
        "incident_id": a.incident_id,
        "acknowledged_by": a.acknowledged_by,
        "acknowledged_s": a.acknowledged_s,
        "releasable_to": sorted(a.releasable_to),
        "audience": a.audience,
        "originator": a.originator,
    }


def alert_from_json(doc: Mapping[str, Any]) -> Alert:
    tid = doc.get("track_id")
    ack = doc.get("acknowledged_s")
    return Alert(
        alert_id=str(_req(doc, "alert_id")),
        time_s=_float(doc, "time_s"),
        rule=str(_req(doc, "rule")),
        severity=str(doc.get("severity", "warning")),
        message=str(doc.get("message", "")),
        track_id=int(tid) if tid is not None else None,
        geofence_id=doc.get("geofence_id"),
        details=dict(doc.get("details") or {}),
        incident_id=doc.get("incident_id"),
        acknowledged_by=doc.get("acknowledged_by"),
        acknowledged_s=float(ack) if ack is not None else None,
        releasable_to=_labels(doc.get("releasable_to")),
        audience=str(doc.get("audience", "")),
        originator=str(doc.get("originator", "")),
    )


def incident_to_json(i: Incident) -> JsonDict:
    return {
        "incident_id": i.incident_id,
        "opened_s": float(i.opened_s),
        "status": i.status,
        "title": i.title,
        "track_ids": [int(t) for t in i.track_ids],
        "alert_ids": list(i.alert_ids),
        "history": [[float(t), who, what] for t, who, what in i.history],
        "updated_s": float(i.updated_s),
        "releasable_to": sorted(i.releasable_to),
        "audience": i.audience,
        "originator": i.originator,
    }


def incident_from_json(doc: Mapping[str, Any]) -> Incident:
    return Incident(
        incident_id=str(_req(doc, "incident_id")),
        opened_s=_float(doc, "opened_s"),
        status=str(_req(doc, "status")),
        title=str(doc.get("title", "")),
        track_ids=tuple(int(t) for t in doc.get("track_ids") or ()),
        alert_ids=tuple(str(a) for a in doc.get("alert_ids") or ()),
        history=tuple((float(h[0]), str(h[1]), str(h[2])) for h in doc.get("history") or ()),
        updated_s=_float(doc, "updated_s", 0.0),
        releasable_to=_labels(doc.get("releasable_to")),
        audience=str(doc.get("audience", "")),
        originator=str(doc.get("originator", "")),
    )


__all__ = [
    "SerializeError",
    "alert_from_json",
    "alert_to_json",
    "classification_from_json",
    "classification_to_json",
    "geofence_from_json",
    "geofence_to_json",
    "incident_from_json",
    "incident_to_json",
    "observation_from_json",
    "observation_to_json",
    "sensor_from_json",
    "sensor_to_json",
    "track_from_json",
    "track_to_json",
]
