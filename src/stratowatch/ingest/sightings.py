"""Visual sightings (CSV or GeoJSON) -> GROUND_2D observations with a large, stated uncertainty.

A sighting is an observer's position and time, optionally the bearing (degrees true, clockwise
from north) and elevation (degrees above the horizon) at which the object was seen, and a free
text. It gives no altitude, so it becomes a 2-D ground estimate:

* **No bearing**: the estimate is the observer's position with a sigma of
  :data:`NO_BEARING_SIGMA_M` (30 km: a high balloon is visible from ~100 km, but most reports
  are of objects roughly overhead).
* **Bearing, no usable elevation** (missing or below 1°): the estimate is placed along the
  bearing at :data:`NOMINAL_DISTANCE_M` (50 km) with sigma :data:`BEARING_SIGMA_M` (40 km: the
  distance is unknown between ~10 and ~120 km; the cross-bearing error of a ±10° bearing at that
  distance, ~9 km, is smaller, and GROUND_2D has one sigma for both axes).
* **Bearing and elevation**: an object at the nominal float altitude
  :data:`NOMINAL_ALT_M` (18 km) seen at elevation *e* is at ground distance
  ``18 km / tan(e)``, clipped to 2..300 km; sigma is half that distance (the altitude may be
  anywhere from ~9 to ~27 km), at least 5 km.

CSV columns (header names, any order): ``time_utc`` (ISO-8601 or POSIX seconds), ``lat``,
``lon`` (observer), optional ``bearing_deg``, ``elevation_deg``, ``text`` and ``observer``.
GeoJSON: a FeatureCollection of Point features (``[lon, lat]``) with the same properties.
The sensor id is ``sighting:<observer>`` when given, else ``ReadContext.sensor_id`` (``default``
becomes ``sightings``). The free text stays in the input file (the source reference cites it).
"""

from __future__ import annotations

import json
import math
from typing import IO, Any

from stratowatch.geo import destination
from stratowatch.ingest._emit import (
    Emitter,
    FieldError,
    csv_header,
    csv_rows,
    parse_float,
    parse_optional_float,
    parse_time_utc,
)
from stratowatch.ingest.base import IngestStats, ReadContext, Sink, register
from stratowatch.ingest.registry import EMPTY_REGISTRY, SensorRegistry
from stratowatch.model import MeasurementKind, Observation

NO_BEARING_SIGMA_M = 30_000.0
NOMINAL_DISTANCE_M = 50_000.0
BEARING_SIGMA_M = 40_000.0
NOMINAL_ALT_M = 18_000.0
MIN_ELEVATION_DEG = 1.0


def sighting_estimate(
    lat_deg: float, lon_deg: float, bearing_deg: float | None, elevation_deg: float | None
) -> tuple[float, float, float]:
    """(lat, lon, sigma_m) of the ground estimate for one sighting (rules in the module doc)."""
    if bearing_deg is None:
        return lat_deg, lon_deg, NO_BEARING_SIGMA_M
    if elevation_deg is not None and elevation_deg >= MIN_ELEVATION_DEG:
        if elevation_deg >= 89.9:
            return lat_deg, lon_deg, 5_000.0
        d = min(max(NOMINAL_ALT_M / math.tan(math.radians(elevation_deg)), 2_000.0), 300_000.0)
        sigma = max(0.5 * d, 5_000.0)
    else:
        d, sigma = NOMINAL_DISTANCE_M, BEARING_SIGMA_M
    lat, lon = destination(lat_deg, lon_deg, bearing_deg, d)
    return float(lat), float(lon), sigma


class SightingsReader:
    name = "sightings"

    def __init__(self, registry: SensorRegistry = EMPTY_REGISTRY) -> None:
        self.registry = registry

    def read(self, stream: IO[bytes], ctx: ReadContext, sink: Sink) -> IngestStats:
        out = Emitter(sink, ctx.source)
        head = stream.read(1)
        rest = stream.read()
        data = head + rest
        if data.lstrip()[:1] == b"{":
            self._geojson(data, ctx, out)
        else:
            import io

            for number, raw, row in csv_rows(io.BytesIO(data), out):
                self._one(row, number, raw, ctx, out)
        return out.stats

    def _geojson(self, data: bytes, ctx: ReadContext, out: Emitter) -> None:
        try:
            doc = json.loads(data)
        except (UnicodeDecodeError, json.JSONDecodeError) as e:
            out.quarantine(0, "sightings GeoJSON is not valid JSON", data, str(getattr(e, "msg", e)))
            return
        feats = doc.get("features") if isinstance(doc, dict) else None
        if not isinstance(feats, list):
            out.quarantine(0, "sightings GeoJSON has no features list", data, "features")
            return
        for i, feat in enumerate(feats, start=1):
            raw = json.dumps(feat).encode()
            geom = feat.get("geometry") if isinstance(feat, dict) else None
            coords = geom.get("coordinates") if isinstance(geom, dict) else None
            props = feat.get("properties") if isinstance(feat, dict) else None
            if (
                not isinstance(geom, dict)
                or geom.get("type") != "Point"
                or not isinstance(coords, list)
                or len(coords) < 2
            ):
                out.quarantine(i, "sightings: geometry: not a Point", raw, "geometry")
                continue
            row: dict[str, Any] = (
                {k: _text(v) for k, v in (props or {}).items()} if isinstance(props, dict) else {}
            )
            row["lon"], row["lat"] = _text(coords[0]), _text(coords[1])
            self._one(row, i, raw, ctx, out)

    def _one(self, row: dict[str, str], number: int, raw: bytes, ctx: ReadContext, out: Emitter) -> None:
        try:
            t = parse_time_utc(row.get("time_utc") or row.get("time"), "time_utc")
            lat = parse_float(row.get("lat"), "lat", lo=-90.0, hi=90.0)
            lon = parse_float(row.get("lon"), "lon", lo=-180.0, hi=360.0)
            brg = parse_optional_float(row.get("bearing_deg"), "bearing_deg", lo=-360.0, hi=360.0)
            el = parse_optional_float(row.get("elevation_deg"), "elevation_deg", lo=-90.0, hi=90.0)
        except FieldError as e:
            out.quarantine(number, f"sightings: {e.field}: {e.reason}", raw, e.field)
            return
        e_lat, e_lon, sigma = sighting_estimate(lat, lon if lon <= 180 else lon - 360, brg, el)
        observer = (row.get("observer") or "").strip()
        raw_id = (
            f"sighting:{observer}"
            if observer
            else (ctx.sensor_id if ctx.sensor_id != "default" else "sightings")
        )
        sid, label, owner = self.registry.label(raw_id)
        out.observations(
            [
                Observation(
                    t,
                    sid,
                    MeasurementKind.GROUND_2D,
                    (e_lat, e_lon),
                    (sigma,),
                    category="sighting",
                    releasable_to=label,
                    originator=owner,
                    source=out.ref(number),
                )
            ]
        )


def _text(v: object) -> str:
    return "" if v is None else str(v)


def sniff(head: bytes) -> bool:
    text = head.lstrip()
    if text[:1] == b"{":
        return (
            b"FeatureCollection" in head and (b"time_utc" in head or b'"time"' in head) and b"Point" in head
        )
    cols = csv_header(head)
    has_time = "time_utc" in cols or "time" in cols
    return (
        has_time
        and "lat" in cols
        and "lon" in cols
        and ("bearing_deg" in cols or "text" in cols)
        and "alt_m" not in cols
    )


register(
    "sightings",
    SightingsReader,
    sniff,
    "Sightings CSV/GeoJSON: time_utc, lat, lon, [bearing_deg, elevation_deg, text, observer]",
)
