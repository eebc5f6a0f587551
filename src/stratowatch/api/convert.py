"""Model dataclasses -> the JSON bodies of the API (the shapes :mod:`stratowatch.api.models` declares).

The JSON forms are the service's own (:mod:`stratowatch.service.serialize`), so a REST body and
the live-stream event of the same object are identical. Plain dict building, no validation: this
is the hot path of ``GET /api/v1/tracks``. Non-finite numbers become ``null``.
"""

from __future__ import annotations

import math
from collections.abc import Mapping
from typing import Any

from stratowatch.service import serialize

track_json = serialize.track_to_json
observation_json = serialize.observation_to_json
sensor_json = serialize.sensor_to_json
alert_json = serialize.alert_to_json
incident_json = serialize.incident_to_json
geofence_json = serialize.geofence_to_json
geofence_from_json = serialize.geofence_from_json

__all__ = [
    "alert_json",
    "arrival_json",
    "finite",
    "geofence_from_json",
    "geofence_json",
    "incident_json",
    "json_safe",
    "observation_json",
    "prediction_parts",
    "sensor_json",
    "track_json",
]


def finite(x: float | None) -> float | None:
    """``x`` when it is a finite number, else ``None``."""
    if x is None:
        return None
    x = float(x)
    return x if math.isfinite(x) else None


def json_safe(value: object) -> Any:
    """A JSON-able copy of ``value``: non-finite floats become ``None``, unknown objects strings."""
    if isinstance(value, float):
        return finite(value)
    if isinstance(value, Mapping):
        return {str(k): json_safe(v) for k, v in value.items()}
    if isinstance(value, (list, tuple, set, frozenset)):
        return [json_safe(v) for v in value]
    if value is None or isinstance(value, (str, int, bool)):
        return value
    return str(value)


def arrival_json(a: Mapping[str, Any]) -> dict[str, Any]:
    return {
        "geofence_id": str(a.get("geofence_id", a.get("region", ""))),
        "probability": float(a.get("probability", 0.0)),
        "earliest_s": finite(a.get("earliest_s")),
        "median_s": finite(a.get("median_s")),
    }


def prediction_parts(payload: Mapping[str, Any]) -> tuple[float | None, dict[str, Any], list[dict[str, Any]]]:
    """A stored prediction payload -> (time_s, GeoJSON FeatureCollection, arrivals).

    The pipeline stores the GeoJSON of :func:`stratowatch.prediction.output.to_geojson` either as
    the payload itself or under ``"geojson"``, and the per-geofence ``"arrivals"`` beside it.
    """
    inner = payload.get("geojson")
    if isinstance(inner, Mapping):
        geojson = dict(inner)
    elif payload.get("type") == "FeatureCollection":
        geojson = {k: v for k, v in payload.items() if k not in ("arrivals", "time_s", "track_id")}
    else:
        geojson = {"type": "FeatureCollection", "features": list(payload.get("features", []))}
    geojson.setdefault("type", "FeatureCollection")
    geojson.setdefault("features", [])
    arrivals = [arrival_json(a) for a in payload.get("arrivals", []) if isinstance(a, Mapping)]
    time_s = payload.get("time_s")
    return (None if time_s is None else finite(float(time_s))), geojson, arrivals
