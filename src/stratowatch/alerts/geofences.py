"""Geofences: loading (GeoJSON, config tables, airfield CSVs) and vectorised tests.

A :class:`~stratowatch.model.Geofence` is a circle (centre and radius, great-circle distance on
the sphere), a polygon (one ring, even-odd rule) or a line (a border or an ADIZ edge;
tracks *cross* lines, they are never *inside* them). Each has an altitude band.

The hot path is :class:`GeofenceIndex`: it compiles a list of geofences once (circle centres,
polygon edges and line segments as flat arrays, with bounding boxes) and then answers, for all
tracks at once, which geofences each track is inside (``inside`` -> bool ``(n_tracks,
n_geofences)``, or ``inside_pairs``) and which line segments each track's last step crossed
(``crossings``), as array operations.

Lines have sides: walking the line from its first vertex to its last, ``left`` is on the left.
:func:`load_border_sides` reads the ``left_side``/``right_side`` labels of line features (e.g.
``"CAN"``/``"USA"`` for the 49th parallel drawn west to east) so a crossing can be told as
"CAN->USA". Shapes and steps across the antimeridian work (longitudes are unwrapped vertex to
vertex, and a shape running past ±180 is also tested shifted by a turn). Polygon edges, line
segments and track steps are straight in lon/lat degrees (circles use great-circle distance), so
keep edges short (a few degrees) where the exact path matters.
"""

from __future__ import annotations

import csv
import json
import math
from collections.abc import Iterable, Mapping, Sequence
from dataclasses import dataclass, field
from importlib import resources
from pathlib import Path
from typing import TYPE_CHECKING, Any

import numpy as np
import numpy.typing as npt

from stratowatch.geo import haversine_m
from stratowatch.model import Geofence

if TYPE_CHECKING:
    from stratowatch.prediction.regions import Region, RegionArrival

FloatArray = npt.NDArray[np.float64]
IntArray = npt.NDArray[np.int64]
BoolArray = npt.NDArray[np.bool_]

EARTH_RADIUS_M = 6_371_008.8
SEVERITIES = ("info", "warning", "critical")
KINDS = ("circle", "polygon", "line")

__all__ = [
    "Crossings",
    "GeofenceError",
    "GeofenceIndex",
    "airfields_from_csv",
    "arrivals_payload",
    "crossings",
    "geofences_from_config",
    "inside",
    "load_border_sides",
    "load_geofences",
    "sample_sites_path",
    "to_regions",
]


class GeofenceError(ValueError):
    """A geofence file or config entry is wrong; the message names the place and the field."""


# --------------------------------------------------------------------------- loading


def sample_sites_path() -> Path:
    """The sample of sensitive sites shipped with the package (written from public facts)."""
    return Path(str(resources.files("stratowatch.alerts").joinpath("data/sensitive_sites.geojson")))


def load_geofences(path: str | Path) -> list[Geofence]:
    """Read a GeoJSON FeatureCollection (or one Feature) into geofences.

    Point + ``radius_m`` -> circle; Polygon (outer ring) / MultiPolygon -> polygon(s);
    LineString / MultiLineString -> line(s). Properties used: ``id`` (else the feature's ``id``,
    else ``<file stem>-<n>``), ``name``, ``min_alt_m``, ``max_alt_m``, ``severity``, ``source``.
    Multi-part geometries become one geofence per part with ids ``<id>#<k>``.
    """
    path = Path(path)
    try:
        doc = json.loads(path.read_text(encoding="utf-8"))
    except OSError as exc:
        raise GeofenceError(f"{path}: cannot read: {exc.strerror or exc}") from exc
    except json.JSONDecodeError as exc:
        raise GeofenceError(f"{path}:{exc.lineno}: not JSON: {exc.msg}") from exc
    features = _features(doc, str(path))
    out: list[Geofence] = []
    for n, feature in enumerate(features):
        out.extend(_feature_geofences(feature, f"{path}: feature {n}", f"{path.stem}-{n}"))
    _check_unique(out, str(path))
    return out


def load_border_sides(path: str | Path) -> dict[str, tuple[str, str]]:
    """``{geofence_id: (left_label, right_label)}`` for line features that carry
    ``left_side``/``right_side`` properties (ids as :func:`load_geofences` gives them)."""
    path = Path(path)
    doc = json.loads(path.read_text(encoding="utf-8"))
    sides: dict[str, tuple[str, str]] = {}
    for n, feature in enumerate(_features(doc, str(path))):
        props = feature.get("properties") or {}
        left, right = props.get("left_side"), props.get("right_side")
        if left is None or right is None:
            continue
        for g in _feature_geofences(feature, f"{path}: feature {n}", f"{path.stem}-{n}"):
            if g.kind == "line":
                sides[g.geofence_id] = (str(left), str(right))
    return sides


def geofences_from_config(
    entries: Sequence[Mapping[str, object]], where: str = "geofences"
) -> list[Geofence]:
    """Geofences from config tables, e.g. TOML ``[[geofences.zones]]``::

        {id = "gf", name = "Site", kind = "circle", center = [47.5, -111.2], radius_m = 20000}
        {id = "box", kind = "polygon", coordinates = [[48, -112], [48, -110], [47, -110]]}

    ``center``/``coordinates`` are ``[lat, lon]`` pairs (note: the order of the config, not GeoJSON's).
    """
    out = []
    for n, entry in enumerate(entries):
        here = f"{where}[{n}]"
        kind = _text(entry, "kind", here, "circle")
        coords: tuple[tuple[float, float], ...]
        if kind == "circle":
            coords = (_pair(entry.get("center"), here, "center"),)
        elif kind in ("polygon", "line"):
            raw = entry.get("coordinates")
            if not isinstance(raw, list | tuple):
                raise GeofenceError(f"{here}: field 'coordinates': a list of [lat, lon] pairs is required")
            coords = tuple(_pair(p, here, f"coordinates[{k}]") for k, p in enumerate(raw))
        else:
            raise GeofenceError(f"{here}: field 'kind': {kind!r} is not one of {', '.join(KINDS)}")
        gid = _text(entry, "id", here, "")
        if not gid:
            raise GeofenceError(f"{here}: field 'id': required")
        out.append(_make(gid, kind, coords, entry, here))
    _check_unique(out, where)
    return out


def airfields_from_csv(
    path: str | Path, radius_m: float = 10_000.0, max_alt_m: float = float("inf"), severity: str = "warning"
) -> list[Geofence]:
    """Circle geofences around the airfields of an ``airports.csv``-style file (columns icao,
    name, lat, lon, ...); ids are ``airfield:<ICAO>``."""
    path = Path(path)
    out = []
    with path.open(newline="", encoding="utf-8") as fh:
        reader = csv.DictReader(fh)
        for line_no, row in enumerate(reader, start=2):
            here = f"{path}:{line_no}"
            icao = (row.get("icao") or "").strip()
            if not icao:
                raise GeofenceError(f"{here}: field 'icao': empty")
            lat = _num(row.get("lat"), here, "lat")
            lon = _num(row.get("lon"), here, "lon")
            out.append(
                _make(
                    f"airfield:{icao}",
                    "circle",
                    ((lat, lon),),
                    {
                        "name": (row.get("name") or icao).strip(),
                        "radius_m": radius_m,
                        "max_alt_m": max_alt_m,
                        "severity": severity,
                        "source": f"{path.name} row {line_no}",
                    },
                    here,
                )
            )
    return out


def _features(doc: object, where: str) -> list[dict[str, Any]]:
    if not isinstance(doc, dict):
        raise GeofenceError(f"{where}: a GeoJSON object is required")
    if doc.get("type") == "FeatureCollection":
        feats = doc.get("features")
        if not isinstance(feats, list):
            raise GeofenceError(f"{where}: field 'features': a list is required")
        if not all(isinstance(f, dict) for f in feats):
            raise GeofenceError(f"{where}: field 'features': every feature must be an object")
        return feats
    if doc.get("type") == "Feature":
        return [doc]
    raise GeofenceError(f"{where}: field 'type': a FeatureCollection or Feature is required")


def _feature_geofences(feature: Mapping[str, object], here: str, default_id: str) -> list[Geofence]:
    props = feature.get("properties") or {}
    if not isinstance(props, dict):
        raise GeofenceError(f"{here}: field 'properties': an object is required")
    geom = feature.get("geometry")
    if not isinstance(geom, dict):
        raise GeofenceError(f"{here}: field 'geometry': an object is required")
    gid = str(props.get("id") or feature.get("id") or default_id)
    gtype = geom.get("type")
    coords = geom.get("coordinates")
    here = f"{here} ({gid})"
    if gtype == "Point":
        return [_make(gid, "circle", (_lonlat(coords, here, "geometry.coordinates"),), props, here)]
    if gtype == "Polygon":
        return [_make(gid, "polygon", _ring(coords, here), props, here)]
    if gtype == "LineString":
        return [_make(gid, "line", _line(coords, here, "geometry.coordinates"), props, here)]
    if gtype in ("MultiPolygon", "MultiLineString"):
        if not isinstance(coords, list) or not coords:
            raise GeofenceError(f"{here}: field 'geometry.coordinates': a non-empty list is required")
        parts = []
        for k, part in enumerate(coords):
            if gtype == "MultiPolygon":
                parts.append(_make(f"{gid}#{k}", "polygon", _ring(part, here), props, here))
            else:
                parts.append(_make(f"{gid}#{k}", "line", _line(part, here, f"coordinates[{k}]"), props, here))
        return parts
    raise GeofenceError(f"{here}: field 'geometry.type': {gtype!r} is not supported")


def _make(
    gid: str, kind: str, coords: tuple[tuple[float, float], ...], props: Mapping[str, object], here: str
) -> Geofence:
    severity = _text(props, "severity", here, "warning")
    if severity not in SEVERITIES:
        raise GeofenceError(f"{here}: field 'severity': {severity!r} is not one of {', '.join(SEVERITIES)}")
    radius = _num(props.get("radius_m", 0.0), here, "radius_m")
    if kind == "circle" and not radius > 0:
        raise GeofenceError(f"{here}: field 'radius_m': a circle needs a positive radius")
    if kind == "polygon" and len(coords) < 3:
        raise GeofenceError(f"{here}: field 'coordinates': a polygon needs at least 3 vertices")
    if kind == "line" and len(coords) < 2:
        raise GeofenceError(f"{here}: field 'coordinates': a line needs at least 2 vertices")
    min_alt = _num(props.get("min_alt_m", -math.inf), here, "min_alt_m")
    max_alt = _num(props.get("max_alt_m", math.inf), here, "max_alt_m")
    if min_alt > max_alt:
        raise GeofenceError(f"{here}: field 'min_alt_m': above max_alt_m")
    return Geofence(
        geofence_id=gid,
        name=_text(props, "name", here, gid),
        kind=kind,
        coordinates=coords,
        radius_m=radius,
        min_alt_m=min_alt,
        max_alt_m=max_alt,
        severity=severity,
        source=_text(props, "source", here, ""),
    )


def _text(d: Mapping[str, object], key: str, here: str, default: str) -> str:
    v = d.get(key, default)
    if v is None:
        return default
    if not isinstance(v, str | int):
        raise GeofenceError(f"{here}: field {key!r}: text is required")
    return str(v)


def _num(v: object, here: str, key: str) -> float:
    if v is None:
        raise GeofenceError(f"{here}: field {key!r}: a number is required")
    try:
        x = float(v)  # type: ignore[arg-type]
    except (TypeError, ValueError):
        raise GeofenceError(f"{here}: field {key!r}: {v!r} is not a number") from None
    if math.isnan(x):
        raise GeofenceError(f"{here}: field {key!r}: NaN")
    return x


def _latlon_checked(lat: float, lon: float, here: str, key: str) -> tuple[float, float]:
    if not -90.0 <= lat <= 90.0:
        raise GeofenceError(f"{here}: field {key!r}: latitude {lat} out of range")
    if not -180.0 <= lon <= 180.0:
        raise GeofenceError(f"{here}: field {key!r}: longitude {lon} out of range")
    return (lat, lon)


def _lonlat(p: object, here: str, key: str) -> tuple[float, float]:
    """A GeoJSON position [lon, lat(, alt)] -> (lat, lon)."""
    if not isinstance(p, list | tuple) or len(p) < 2:
        raise GeofenceError(f"{here}: field {key!r}: a [lon, lat] position is required")
    return _latlon_checked(_num(p[1], here, key), _num(p[0], here, key), here, key)


def _pair(p: object, here: str, key: str) -> tuple[float, float]:
    """A config pair [lat, lon] -> (lat, lon)."""
    if not isinstance(p, list | tuple) or len(p) != 2:
        raise GeofenceError(f"{here}: field {key!r}: a [lat, lon] pair is required")
    return _latlon_checked(_num(p[0], here, key), _num(p[1], here, key), here, key)


def _line(coords: object, here: str, key: str) -> tuple[tuple[float, float], ...]:
    if not isinstance(coords, list):
        raise GeofenceError(f"{here}: field {key!r}: a list of positions is required")
    return tuple(_lonlat(p, here, f"{key}[{k}]") for k, p in enumerate(coords))


def _ring(coords: object, here: str) -> tuple[tuple[float, float], ...]:
    if not isinstance(coords, list) or not coords:
        raise GeofenceError(f"{here}: field 'geometry.coordinates': a list of rings is required")
    ring = _line(coords[0], here, "geometry.coordinates[0]")
    if len(ring) > 1 and ring[0] == ring[-1]:
        ring = ring[:-1]
    return ring


def _check_unique(geofences: Sequence[Geofence], where: str) -> None:
    seen: set[str] = set()
    for g in geofences:
        if g.geofence_id in seen:
            raise GeofenceError(f"{where}: geofence id {g.geofence_id!r} appears twice")
        seen.add(g.geofence_id)


# --------------------------------------------------------------------------- vectorised tests


@dataclass(frozen=True, slots=True)
class Crossings:
    """Line crossings by track steps, one row per (track, line segment) pair that intersect.

    ``left_to_right`` is True when the step went from the line's left side to its right side
    (walking the line from its first vertex to its last)."""

    track_index: IntArray
    geofence_index: IntArray
    segment_index: IntArray
    left_to_right: BoolArray
    fraction: FloatArray  # where along the step the crossing is (0 = start, 1 = end)

    def __len__(self) -> int:
        return int(self.track_index.size)


class GeofenceIndex:
    """A compiled set of geofences for all-tracks-at-once tests (build once, query every step).

    Candidate (point, geofence) pairs come from a sort-and-sweep over longitude against each
    geofence's bounding box (``searchsorted`` plus ``repeat``, no Python loop over points or
    geofences); the exact tests then run on the pairs only: great-circle distance for circles,
    the even-odd rule over every edge of the pair's polygon for polygons, segment intersection
    for lines.
    """

    def __init__(self, geofences: Iterable[Geofence]) -> None:
        self.geofences: tuple[Geofence, ...] = tuple(geofences)
        gs = self.geofences
        self.ids: tuple[str, ...] = tuple(g.geofence_id for g in gs)
        self.position: dict[str, int] = {gid: i for i, gid in enumerate(self.ids)}
        self.min_alt_m = np.array([g.min_alt_m for g in gs], dtype=np.float64)
        self.max_alt_m = np.array([g.max_alt_m for g in gs], dtype=np.float64)
        self.is_line = np.array([g.kind == "line" for g in gs], dtype=bool)

        circ = [i for i, g in enumerate(gs) if g.kind == "circle"]
        self._circle_index = np.array(circ, dtype=np.int64)
        self._circle_lat = np.array([gs[i].coordinates[0][0] for i in circ], dtype=np.float64)
        self._circle_lon = np.array([gs[i].coordinates[0][1] for i in circ], dtype=np.float64)
        self._circle_radius = np.array([gs[i].radius_m for i in circ], dtype=np.float64)
        dlat = np.degrees(self._circle_radius / EARTH_RADIUS_M) * 1.01 + 1e-9
        coslat = np.cos(np.radians(np.minimum(np.abs(self._circle_lat) + dlat, 89.9)))
        dlon = np.minimum(dlat / coslat, 360.0)
        self._circle_box = _Boxes(
            self._circle_lat - dlat, self._circle_lat + dlat, self._circle_lon - dlon, self._circle_lon + dlon
        ).wrapped()

        # polygons: all edges concatenated, polygon k owns edges [start[k], start[k] + count[k])
        poly = [i for i, g in enumerate(gs) if g.kind == "polygon"]
        self._polygon_index = np.array(poly, dtype=np.int64)
        rings = [_unwrap(np.array(gs[i].coordinates, dtype=np.float64)) for i in poly]
        counts = np.array([len(r) for r in rings], dtype=np.int64)
        self._edge_count = counts
        self._edge_start = np.cumsum(counts) - counts
        if rings:
            a = np.concatenate(rings)
            b = np.concatenate([np.roll(r, -1, axis=0) for r in rings])
        else:
            a = b = np.empty((0, 2))
        self._edge_a_lat, self._edge_a_lon = a[:, 0], a[:, 1]
        self._edge_b_lat, self._edge_b_lon = b[:, 0], b[:, 1]
        self._polygon_box = _Boxes(
            np.array([r[:, 0].min() for r in rings]),
            np.array([r[:, 0].max() for r in rings]),
            np.array([r[:, 1].min() for r in rings]),
            np.array([r[:, 1].max() for r in rings]),
        ).wrapped()

        # lines: all segments concatenated, each with its geofence index
        seg_gf: list[int] = []
        seg_a: list[tuple[float, float]] = []
        seg_b: list[tuple[float, float]] = []
        for i, g in enumerate(gs):
            if g.kind != "line":
                continue
            pts = _unwrap(np.array(g.coordinates, dtype=np.float64))
            seg_a.extend((float(a), float(b)) for a, b in pts[:-1])
            seg_b.extend((float(a), float(b)) for a, b in pts[1:])
            seg_gf.extend([i] * (len(g.coordinates) - 1))
        self._segment_geofence = np.array(seg_gf, dtype=np.int64)
        sa = np.array(seg_a, dtype=np.float64).reshape(-1, 2)
        sb = np.array(seg_b, dtype=np.float64).reshape(-1, 2)
        self._segment_a_lat, self._segment_a_lon = sa[:, 0], sa[:, 1]
        self._segment_b_lat, self._segment_b_lon = sb[:, 0], sb[:, 1]
        self._segment_box = _Boxes(
            np.minimum(sa[:, 0], sb[:, 0]),
            np.maximum(sa[:, 0], sb[:, 0]),
            np.minimum(sa[:, 1], sb[:, 1]),
            np.maximum(sa[:, 1], sb[:, 1]),
        ).wrapped()
        first_seg = np.zeros(len(gs), dtype=np.int64)
        if seg_gf:
            change = np.flatnonzero(np.r_[True, np.diff(self._segment_geofence) != 0])
            first_seg[self._segment_geofence[change]] = change
        self._first_segment = first_seg
        last_seg = np.full(len(gs), -1, dtype=np.int64)
        if seg_gf:
            ends = np.flatnonzero(np.r_[np.diff(self._segment_geofence) != 0, True])
            last_seg[self._segment_geofence[ends]] = ends
        self._last_segment = last_seg

    def __len__(self) -> int:
        return len(self.geofences)

    def inside_pairs(
        self, lat_deg: npt.ArrayLike, lon_deg: npt.ArrayLike, alt_m: npt.ArrayLike
    ) -> tuple[IntArray, IntArray]:
        """``(point_index, geofence_index)`` of every point inside a geofence (area and band)."""
        lat = np.atleast_1d(np.asarray(lat_deg, dtype=np.float64))
        lon = _normal_lon(np.atleast_1d(np.asarray(lon_deg, dtype=np.float64)))
        alt = np.broadcast_to(np.asarray(alt_m, dtype=np.float64), lat.shape)
        sweep = _Sweep(lat, lon)
        pts: list[IntArray] = []
        gfs: list[IntArray] = []
        if self._circle_index.size:
            p, box = sweep.candidates(self._circle_box)
            c = self._circle_box.owner[box]
            hit = (
                haversine_m(self._circle_lat[c], self._circle_lon[c], lat[p], lon[p])
                <= self._circle_radius[c]
            )
            pts.append(p[hit])
            gfs.append(self._circle_index[c[hit]])
        if self._polygon_index.size:
            p, box = sweep.candidates(self._polygon_box)
            k = self._polygon_box.owner[box]
            hit = self._even_odd(lat[p], lon[p] - self._polygon_box.shift[box], k)
            pts.append(p[hit])
            gfs.append(self._polygon_index[k[hit]])
        if not pts:
            return np.empty(0, np.int64), np.empty(0, np.int64)
        p_all, g_all = np.concatenate(pts), np.concatenate(gfs)
        band = (alt[p_all] >= self.min_alt_m[g_all]) & (alt[p_all] <= self.max_alt_m[g_all])
        return p_all[band], g_all[band]

    def inside(self, lat_deg: npt.ArrayLike, lon_deg: npt.ArrayLike, alt_m: npt.ArrayLike) -> BoolArray:
        """Bool ``(n_points, n_geofences)``: the point is inside the area and the altitude band.
        Line columns are always False; NaN points are outside everything."""
        lat = np.atleast_1d(np.asarray(lat_deg, dtype=np.float64))
        out = np.zeros((lat.size, len(self.geofences)), dtype=bool)
        p, g = self.inside_pairs(lat, lon_deg, alt_m)
        out[p, g] = True
        return out

    def _even_odd(self, lat: FloatArray, lon: FloatArray, polygon: IntArray) -> BoolArray:
        """Even-odd rule for pairs (point, polygon): every pair against each of its polygon's edges."""
        if lat.size == 0:
            return np.zeros(0, dtype=bool)
        n_edges = self._edge_count[polygon]
        pair = np.repeat(np.arange(lat.size), n_edges)
        edge = np.repeat(self._edge_start[polygon] - np.cumsum(n_edges) + n_edges, n_edges) + np.arange(
            int(n_edges.sum())
        )
        py, px = lat[pair], lon[pair]
        ay, ax = self._edge_a_lat[edge], self._edge_a_lon[edge]
        by, bx = self._edge_b_lat[edge], self._edge_b_lon[edge]
        crosses = (ay > py) != (by > py)
        with np.errstate(divide="ignore", invalid="ignore"):
            x_at = ax + (py - ay) * (bx - ax) / (by - ay)
        hit = crosses & (px < x_at)
        return (np.bincount(pair, weights=hit, minlength=lat.size) % 2).astype(bool)

    def crossings(
        self,
        lat0_deg: npt.ArrayLike,
        lon0_deg: npt.ArrayLike,
        lat1_deg: npt.ArrayLike,
        lon1_deg: npt.ArrayLike,
        alt_m: npt.ArrayLike | None = None,
    ) -> Crossings:
        """Which line segments each step (lat0, lon0) -> (lat1, lon1) crosses, and which way.

        A step that only touches the line at one end does not count at its start (so a track
        sitting on the line is not reported twice). ``alt_m`` (at the end of the step), when
        given, must lie in the line's altitude band."""
        la0 = np.atleast_1d(np.asarray(lat0_deg, dtype=np.float64))
        lo0 = np.atleast_1d(np.asarray(lon0_deg, dtype=np.float64))
        la1 = np.atleast_1d(np.asarray(lat1_deg, dtype=np.float64))
        lo1 = np.atleast_1d(np.asarray(lon1_deg, dtype=np.float64))
        empty = Crossings(
            np.empty(0, np.int64),
            np.empty(0, np.int64),
            np.empty(0, np.int64),
            np.empty(0, bool),
            np.empty(0),
        )
        if la0.size == 0 or self._segment_geofence.size == 0:
            return empty
        lo1 = lo0 + ((lo1 - lo0 + 180.0) % 360.0 - 180.0)  # the short way round
        # candidates: the step's midpoint against segment boxes grown by the largest half-step
        with np.errstate(invalid="ignore"):
            half_lat = np.abs(la1 - la0) / 2
            half_lon = np.abs(lo1 - lo0) / 2
        finite = np.isfinite(half_lat) & np.isfinite(half_lon)
        if not finite.any():
            return empty
        grow_lat = float(half_lat[finite].max()) + 1e-9
        grow_lon = float(half_lon[finite].max()) + 1e-9
        box = self._segment_box
        grown = _Boxes(
            box.min_lat - grow_lat,
            box.max_lat + grow_lat,
            box.min_lon - grow_lon,
            box.max_lon + grow_lon,
            box.owner,
            box.shift,
        )
        mid_lon = _normal_lon(lo0 + (lo1 - lo0) / 2)
        t, b = _Sweep((la0 + la1) / 2, mid_lon).candidates(grown)
        if t.size == 0:
            return empty
        s = box.owner[b]
        # exact segment/segment test, planar in lon/lat degrees, in the segment's longitude frame
        rx, ry = lo1[t] - lo0[t], la1[t] - la0[t]
        px, py = mid_lon[t] - box.shift[b] - rx / 2, la0[t]
        ax, ay = self._segment_a_lon[s], self._segment_a_lat[s]
        sx, sy = self._segment_b_lon[s] - ax, self._segment_b_lat[s] - ay
        denom = rx * sy - ry * sx
        with np.errstate(divide="ignore", invalid="ignore"):
            frac = ((ax - px) * sy - (ay - py) * sx) / denom  # along the step
            u = ((ax - px) * ry - (ay - py) * rx) / denom  # along the segment
        side0 = sx * (py - ay) - sy * (px - ax)  # > 0: the step starts left of the segment
        side1 = sx * (la1[t] - ay) - sy * (px + rx - ax)
        gf = self._segment_geofence[s]
        # a shared vertex belongs to the later segment (the line's last vertex to its last segment)
        u_ok = (u >= 0) & ((u < 1) | ((u == 1) & (s == self._last_segment[gf])))
        keep = (denom != 0) & (frac > 0) & (frac <= 1) & u_ok
        keep &= (side0 != 0) & (np.sign(side0) != np.sign(side1))
        if alt_m is not None:
            alt = np.broadcast_to(np.asarray(alt_m, dtype=np.float64), la0.shape)[t]
            keep &= (alt >= self.min_alt_m[gf]) & (alt <= self.max_alt_m[gf])
        # a step crossing one line several times (a wiggle) has crossed it when the count is odd,
        # in the direction of its first crossing; an even count leaves it on the side it started
        sel = np.flatnonzero(keep)
        if sel.size:
            sel = sel[np.lexsort((frac[sel], gf[sel], t[sel]))]
            starts = np.flatnonzero(np.r_[True, (np.diff(t[sel]) != 0) | (np.diff(gf[sel]) != 0)])
            count = np.diff(np.r_[starts, sel.size])
            sel = sel[starts[count % 2 == 1]]
        return Crossings(
            track_index=t[sel],
            geofence_index=gf[sel],
            segment_index=s[sel] - self._first_segment[gf[sel]],
            left_to_right=side0[sel] > 0,
            fraction=frac[sel],
        )


@dataclass(frozen=True, slots=True)
class _Boxes:
    """Bounding boxes; ``owner`` maps each box to its shape and ``shift`` is the longitude offset
    of a copy made for a shape that runs past ±180 (the copy is the shape moved by ``shift``)."""

    min_lat: FloatArray
    max_lat: FloatArray
    min_lon: FloatArray
    max_lon: FloatArray
    owner: IntArray = field(default_factory=lambda: np.empty(0, dtype=np.int64))
    shift: FloatArray = field(default_factory=lambda: np.empty(0))

    def wrapped(self) -> _Boxes:
        """These boxes plus, for each box past +180 (-180), a copy moved by -360 (+360)."""
        n = self.min_lat.size
        east = np.flatnonzero(self.max_lon > 180.0)
        west = np.flatnonzero(self.min_lon < -180.0)
        take = np.concatenate([np.arange(n), east, west])
        shift = np.concatenate([np.zeros(n), np.full(east.size, -360.0), np.full(west.size, 360.0)])
        return _Boxes(
            self.min_lat[take],
            self.max_lat[take],
            self.min_lon[take] + shift,
            self.max_lon[take] + shift,
            take.astype(np.int64),
            shift,
        )


def _normal_lon(lon: FloatArray) -> FloatArray:
    """Longitudes into [-180, 180)."""
    return np.asarray((lon + 180.0) % 360.0 - 180.0, dtype=np.float64)


def _unwrap(latlon: FloatArray) -> FloatArray:
    """Each vertex's longitude moved by whole turns to within 180° of the previous one, so a
    shape across the antimeridian is continuous (it may then run past ±180)."""
    if latlon.shape[0] == 0:
        return latlon
    out = latlon.copy()
    step = (np.diff(latlon[:, 1]) + 180.0) % 360.0 - 180.0
    out[1:, 1] = latlon[0, 1] + np.cumsum(step)
    return out


class _Sweep:
    """Points sorted by longitude, to find all (point, box) pairs with a point in the box."""

    def __init__(self, lat: FloatArray, lon: FloatArray) -> None:
        ok = np.isfinite(lat) & np.isfinite(lon)
        idx = np.flatnonzero(ok)
        order = np.argsort(lon[idx], kind="stable")
        self.index = idx[order]
        self.lon = lon[self.index]
        self.lat_all = lat

    def candidates(self, boxes: _Boxes) -> tuple[IntArray, IntArray]:
        lo = np.searchsorted(self.lon, boxes.min_lon, side="left")
        hi = np.searchsorted(self.lon, boxes.max_lon, side="right")
        counts = np.maximum(hi - lo, 0)
        total = int(counts.sum())
        if total == 0:
            return np.empty(0, np.int64), np.empty(0, np.int64)
        box = np.repeat(np.arange(counts.size), counts)
        offset = np.arange(total) - np.repeat(np.cumsum(counts) - counts, counts)
        point = self.index[np.repeat(lo, counts) + offset]
        lat = self.lat_all[point]
        keep = (lat >= boxes.min_lat[box]) & (lat <= boxes.max_lat[box])
        return point[keep].astype(np.int64), box[keep].astype(np.int64)


def inside(
    geofences: Sequence[Geofence] | GeofenceIndex,
    lat_deg: npt.ArrayLike,
    lon_deg: npt.ArrayLike,
    alt_m: npt.ArrayLike,
) -> BoolArray:
    """Bool ``(n_points, n_geofences)`` (see :meth:`GeofenceIndex.inside`)."""
    index = geofences if isinstance(geofences, GeofenceIndex) else GeofenceIndex(geofences)
    return index.inside(lat_deg, lon_deg, alt_m)


def crossings(
    geofences: Sequence[Geofence] | GeofenceIndex,
    lat0_deg: npt.ArrayLike,
    lon0_deg: npt.ArrayLike,
    lat1_deg: npt.ArrayLike,
    lon1_deg: npt.ArrayLike,
) -> Crossings:
    """Line crossings of steps (see :meth:`GeofenceIndex.crossings`)."""
    index = geofences if isinstance(geofences, GeofenceIndex) else GeofenceIndex(geofences)
    return index.crossings(lat0_deg, lon0_deg, lat1_deg, lon1_deg)


def to_regions(geofences: Iterable[Geofence]) -> list[Region]:
    """Circles and polygons as prediction regions named by geofence id, for
    :func:`stratowatch.prediction.region_arrival` (lines are skipped: nothing arrives in a line)."""
    from stratowatch.prediction.regions import Region

    out = []
    for g in geofences:
        if g.kind == "circle":
            lat, lon = g.coordinates[0]
            out.append(Region.circle(g.geofence_id, lat, lon, g.radius_m))
        elif g.kind == "polygon":
            out.append(
                Region.polygon(g.geofence_id, [c[0] for c in g.coordinates], [c[1] for c in g.coordinates])
            )
    return out


def arrivals_payload(arrivals: Iterable[RegionArrival]) -> list[dict[str, Any]]:
    """Region arrivals (regions named by geofence id) as the prediction payload's ``"arrivals"``
    list the alert rules read: ``{"geofence_id", "probability", "earliest_s", "median_s"}``
    (times ``None`` when no member arrives)."""
    return [
        {
            "geofence_id": a.name,
            "probability": float(a.probability),
            "earliest_s": float(a.earliest_time_s) if math.isfinite(a.earliest_time_s) else None,
            "median_s": float(a.median_time_s) if math.isfinite(a.median_time_s) else None,
        }
        for a in arrivals
    ]
