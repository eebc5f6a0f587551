"""Writing predictions: GeoJSON (cones + median and deterministic paths), KML, CSV.

* GeoJSON: a FeatureCollection with one Polygon per cone level and chosen lead time
  (properties ``kind="cone"``, ``probability``, ``time_utc``, ``lead_h``, ``members``), a LineString
  ``kind="median_path"``, a LineString ``kind="deterministic_path"`` (member 0) and, when
  given, one Point per region arrival (``kind="region_arrival"``). Cone rings keep longitudes
  continuous around their centre (a ring crossing ±180 has longitudes beyond it).
* KML (simplekml): the same paths and cones, altitudes absolute.
* CSV: ``member,time_utc,lat,lon,alt_m``, one row per member and output time (member 0 is the
  deterministic run); rows after a member left the wind field are omitted.
"""

from __future__ import annotations

import json
from collections.abc import Sequence
from pathlib import Path
from typing import Any

import numpy as np
import numpy.typing as npt

from stratowatch.prediction.cones import Cone
from stratowatch.prediction.integrate import Prediction
from stratowatch.prediction.regions import RegionArrival
from stratowatch.weather.grid import FloatArray


def iso_utc(time_s: npt.ArrayLike) -> npt.NDArray[np.str_]:
    """POSIX seconds -> 'YYYY-MM-DDTHH:MM:SSZ' strings, vectorised."""
    t = np.round(np.asarray(time_s, dtype=np.float64)).astype("datetime64[s]")
    return np.char.add(np.datetime_as_string(t, unit="s"), "Z")


def _line(lat: FloatArray, lon: FloatArray, alt: FloatArray) -> list[list[float]]:
    ok = np.isfinite(lat) & np.isfinite(lon)
    lon = lon[ok]
    lon = (
        lon[0] + np.concatenate([[0.0], np.cumsum((np.diff(lon) + 180.0) % 360.0 - 180.0)])
        if lon.size
        else lon
    )
    return np.round(np.stack([lon, lat[ok], alt[ok]], axis=1), 6).tolist()


def cone_lead_indices(prediction: Prediction, every_h: float = 6.0) -> npt.NDArray[np.int64]:
    """Output indices every ``every_h`` hours of lead (and the last one)."""
    lead_h = prediction.lead_s / 3600.0
    marks = np.arange(every_h, lead_h[-1] + 1e-9, every_h)
    idx = np.searchsorted(lead_h, marks - 1e-9)
    return np.unique(np.append(idx[idx < len(lead_h)], len(lead_h) - 1)).astype(np.int64)


def _clip_half_plane(ring: FloatArray, lon_limit: float, keep_west: bool) -> FloatArray:
    """Sutherland-Hodgman clip of a closed (n, 2) lon/lat ring to lon <= limit (or >= limit)."""
    pts = ring[:-1]
    side = (pts[:, 0] <= lon_limit) if keep_west else (pts[:, 0] >= lon_limit)
    out: list[FloatArray] = []
    for i in range(len(pts)):
        a, b = pts[i - 1], pts[i]
        in_a, in_b = side[i - 1], side[i]
        if in_a != in_b:
            f = (lon_limit - a[0]) / (b[0] - a[0])
            out.append(np.array([lon_limit, a[1] + f * (b[1] - a[1])]))
        if in_b:
            out.append(b)
    if len(out) < 3:
        return np.empty((0, 2))
    arr = np.array(out)
    return np.vstack([arr, arr[:1]])


def _cone_geometry(ring: FloatArray) -> dict[str, Any]:
    """A Polygon, or a MultiPolygon split at the antimeridian when the ring crosses it."""
    lon = ring[:, 0]
    if lon.max() <= 180.0 and lon.min() >= -180.0:
        return {"type": "Polygon", "coordinates": [ring.tolist()]}
    limit = 180.0 if lon.max() > 180.0 else -180.0
    west = _clip_half_plane(ring, limit, keep_west=True)
    east = _clip_half_plane(ring, limit, keep_west=False)
    parts = []
    for part, cut_lon in ((west, 180.0), (east, -180.0)):  # the cut is the west piece's east edge
        if len(part):
            lon_part = np.where(np.isclose(part[:, 0], limit), cut_lon, (part[:, 0] + 180.0) % 360.0 - 180.0)
            parts.append([np.round(np.stack([lon_part, part[:, 1]], axis=1), 6).tolist()])
    return {"type": "MultiPolygon", "coordinates": parts}


def to_geojson(
    prediction: Prediction,
    cone_list: Sequence[Cone],
    arrivals: Sequence[RegionArrival] = (),
) -> dict[str, Any]:
    features: list[dict[str, Any]] = []
    t0 = prediction.time_s[0]
    for cone in cone_list:
        when = iso_utc(cone.time_s)
        rings = np.round(np.stack([cone.lon_deg, cone.lat_deg], axis=-1), 6)
        for i in range(len(cone.time_s)):
            if not np.all(np.isfinite(rings[i])):
                continue
            features.append(
                {
                    "type": "Feature",
                    "geometry": _cone_geometry(rings[i]),
                    "properties": {
                        "kind": "cone",
                        "probability": cone.probability,
                        "time_utc": str(when[i]),
                        "lead_h": round(abs(float(cone.time_s[i] - t0)) / 3600.0, 3),
                        "members": int(cone.members[i]),
                    },
                }
            )
    mlat, mlon, malt = prediction.median_path()
    for kind, (lat, lon, alt) in (
        ("median_path", (mlat, mlon, malt)),
        ("deterministic_path", (prediction.lat_deg[0], prediction.lon_deg[0], prediction.alt_m[0])),
    ):
        features.append(
            {
                "type": "Feature",
                "geometry": {"type": "LineString", "coordinates": _line(lat, lon, alt)},
                "properties": {
                    "kind": kind,
                    "start_utc": str(iso_utc(prediction.time_s[0])),
                    "end_utc": str(iso_utc(prediction.time_s[-1])),
                    "backward": prediction.backward,
                },
            }
        )
    for a in arrivals:
        features.append(
            {
                "type": "Feature",
                "geometry": None,
                "properties": {
                    "kind": "region_arrival",
                    "region": a.name,
                    "probability": a.probability,
                    "earliest_utc": str(iso_utc(a.earliest_time_s))
                    if np.isfinite(a.earliest_time_s)
                    else None,
                    "median_utc": str(iso_utc(a.median_time_s)) if np.isfinite(a.median_time_s) else None,
                },
            }
        )
    return {
        "type": "FeatureCollection",
        "features": features,
        "properties": {
            "members": prediction.members,
            "source": prediction.source,
            "notes": list(prediction.notes),
        },
    }


def write_geojson(
    path: str | Path,
    prediction: Prediction,
    cone_list: Sequence[Cone],
    arrivals: Sequence[RegionArrival] = (),
) -> None:
    Path(path).write_text(json.dumps(to_geojson(prediction, cone_list, arrivals)), encoding="utf-8")


def write_csv(path: str | Path, prediction: Prediction) -> int:
    """Write ``member,time_utc,lat,lon,alt_m``; returns the number of rows."""
    n, m = prediction.lat_deg.shape
    ok = np.isfinite(prediction.lat_deg)
    member = np.broadcast_to(np.arange(n)[:, None], (n, m))[ok]
    when = np.broadcast_to(iso_utc(prediction.time_s)[None, :], (n, m))[ok]
    cols = [
        member.astype(str),
        when,
        np.char.mod("%.6f", prediction.lat_deg[ok]),
        np.char.mod("%.6f", prediction.lon_deg[ok]),
        np.char.mod("%.1f", prediction.alt_m[ok]),
    ]
    rows = cols[0]
    for c in cols[1:]:
        rows = np.char.add(np.char.add(rows, ","), c)
    with Path(path).open("w", encoding="utf-8", newline="\n") as f:
        f.write("member,time_utc,lat,lon,alt_m\n")
        if rows.size:
            f.write("\n".join(rows.tolist()))
            f.write("\n")
    return int(rows.size)


def write_kml(path: str | Path, prediction: Prediction, cone_list: Sequence[Cone]) -> None:
    import simplekml

    kml = simplekml.Kml(name="stratowatch prediction")
    mlat, mlon, malt = prediction.median_path()
    for name, (lat, lon, alt), colour in (
        ("median path", (mlat, mlon, malt), simplekml.Color.red),
        (
            "deterministic path (member 0)",
            (prediction.lat_deg[0], prediction.lon_deg[0], prediction.alt_m[0]),
            simplekml.Color.white,
        ),
    ):
        line = kml.newlinestring(name=name, coords=[tuple(c) for c in _line(lat, lon, alt)])
        line.altitudemode = simplekml.AltitudeMode.absolute
        line.style.linestyle.color = colour
        line.style.linestyle.width = 3
    for cone in cone_list:
        folder = kml.newfolder(name=f"{round(cone.probability * 100)}% cone")
        when = iso_utc(cone.time_s)
        for i in range(len(cone.time_s)):
            if not np.all(np.isfinite(cone.lat_deg[i])):
                continue
            pol = folder.newpolygon(
                name=f"{round(cone.probability * 100)}% at {when[i]}",
                outerboundaryis=list(zip(cone.lon_deg[i].tolist(), cone.lat_deg[i].tolist(), strict=True)),
            )
            pol.style.polystyle.color = simplekml.Color.changealphaint(60, simplekml.Color.orange)
            pol.timestamp.when = str(when[i])
    kml.save(str(path))


def member_lines(pred: Prediction, count: int = 30, **properties: Any) -> list[dict[str, Any]]:
    """Up to ``count`` ensemble members, evenly spread over the members, as GeoJSON LineString
    features with ``kind = "member"`` (the spread drawn as spaghetti)."""
    shown = np.unique(np.linspace(0, pred.members - 1, min(count, pred.members)).astype(int))
    lon = np.round(pred.lon_deg[shown], 5)
    lat = np.round(pred.lat_deg[shown], 5)
    out = []
    for k, i in enumerate(shown.tolist()):  # a few dozen lines at most
        ok = np.isfinite(lon[k]) & np.isfinite(lat[k])
        if np.count_nonzero(ok) >= 2:
            out.append(
                {
                    "type": "Feature",
                    "geometry": {
                        "type": "LineString",
                        "coordinates": np.stack([lon[k][ok], lat[k][ok]], axis=1).tolist(),
                    },
                    "properties": {"kind": "member", "member": i, **properties},
                }
            )
    return out
