"""Borders from TopoJSON (e.g. world-atlas ``countries-50m.json``) as line geofences.

TopoJSON stores each boundary once, as an *arc* shared by the polygons on both sides: an arc
index ``i`` in a ring means arc ``i`` forwards and ``~i`` (= ``-i - 1``) means arc ``i`` reversed.
Quantized files delta-encode the arc positions and give a ``transform`` (``scale``,
``translate``) back to degrees. The border between two countries is therefore the set of arcs
that both countries' rings use; :func:`shared_border` chains those arcs into polylines and works
out, for each, which country lies on its left (so a crossing can be told "CAN->USA").
"""

from __future__ import annotations

import json
from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import numpy as np
import shapely

from stratowatch.alerts.geofences import FloatArray, GeofenceError
from stratowatch.model import Geofence

__all__ = ["Border", "TopoJSON", "shared_border"]


@dataclass(frozen=True, slots=True)
class Border:
    """Line geofences of one border and the side labels ``{geofence_id: (left, right)}``."""

    geofences: tuple[Geofence, ...]
    sides: Mapping[str, tuple[str, str]]


class TopoJSON:
    """A decoded TopoJSON topology: arcs in degrees and the geometries of one object."""

    def __init__(self, path: str | Path, object_name: str = "countries") -> None:
        self.path = Path(path)
        try:
            doc = json.loads(self.path.read_text(encoding="utf-8"))
        except OSError as exc:
            raise GeofenceError(f"{self.path}: cannot read: {exc.strerror or exc}") from exc
        except json.JSONDecodeError as exc:
            raise GeofenceError(f"{self.path}:{exc.lineno}: not JSON: {exc.msg}") from exc
        if not isinstance(doc, dict) or doc.get("type") != "Topology":
            raise GeofenceError(f"{self.path}: field 'type': a TopoJSON Topology is required")
        objects = doc.get("objects") or {}
        if object_name not in objects:
            raise GeofenceError(f"{self.path}: field 'objects': no object named {object_name!r}")
        self.arcs = _decode_arcs(doc.get("arcs") or [], doc.get("transform"))
        self.geometries: dict[str, dict[str, Any]] = {}
        for geom in objects[object_name].get("geometries", []):
            if "id" in geom:
                self.geometries[str(geom["id"])] = geom

    def name(self, geometry_id: str) -> str:
        props = self._geometry(geometry_id).get("properties") or {}
        return str(props.get("name", geometry_id)) if isinstance(props, dict) else geometry_id

    def arc_indices(self, geometry_id: str) -> set[int]:
        """Every arc (as its forward index) used by the rings of one geometry."""
        used: set[int] = set()
        for ring in self._rings(geometry_id):
            used.update(i if i >= 0 else ~i for i in ring)
        return used

    def polygons(self, geometry_id: str, *, repair: bool = True) -> shapely.Geometry:
        """The geometry as a shapely (Multi)Polygon in (lon, lat); ``repair=False`` skips
        ``make_valid`` (slow on large countries; point-in-polygon tests do not need it)."""
        geom = self._geometry(geometry_id)
        gtype = geom.get("type")
        arcs = geom.get("arcs") or []
        polys = [arcs] if gtype == "Polygon" else arcs if gtype == "MultiPolygon" else []
        out = []
        for poly in polys:
            rings = [self._ring_coords(r) for r in poly]
            if rings and len(rings[0]) >= 4:
                out.append(shapely.Polygon(rings[0], [r for r in rings[1:] if len(r) >= 4]))
        merged = shapely.multipolygons(out) if out else shapely.MultiPolygon()
        return merged if not repair or merged.is_valid else shapely.make_valid(merged)

    def _geometry(self, geometry_id: str) -> dict[str, Any]:
        try:
            return self.geometries[str(geometry_id)]
        except KeyError:
            raise GeofenceError(f"{self.path}: no geometry with id {geometry_id!r}") from None

    def _rings(self, geometry_id: str) -> list[list[int]]:
        geom = self._geometry(geometry_id)
        arcs = geom.get("arcs") or []
        if geom.get("type") == "Polygon":
            return list(arcs)
        if geom.get("type") == "MultiPolygon":
            return [ring for poly in arcs for ring in poly]
        return []

    def _ring_coords(self, ring: Sequence[int]) -> FloatArray:
        parts = []
        for k, i in enumerate(ring):
            a = self.arcs[i] if i >= 0 else self.arcs[~i][::-1]
            parts.append(a if k == 0 else a[1:])
        return np.concatenate(parts) if parts else np.empty((0, 2))


def _decode_arcs(arcs: Sequence[Sequence[Sequence[float]]], transform: object) -> list[FloatArray]:
    out = []
    for arc in arcs:
        a = np.asarray(arc, dtype=np.float64).reshape(-1, 2)
        if isinstance(transform, dict):
            scale = np.asarray(transform["scale"], dtype=np.float64)
            translate = np.asarray(transform["translate"], dtype=np.float64)
            a = np.cumsum(a, axis=0) * scale + translate
        out.append(a)
    return out


def shared_border(
    path: str | Path,
    id_a: str,
    id_b: str,
    labels: tuple[str, str] | None = None,
    *,
    severity: str = "warning",
    object_name: str = "countries",
) -> Border:
    """The border between geometries ``id_a`` and ``id_b`` (e.g. ``"124"`` Canada and ``"840"``
    USA in world-atlas) as line geofences ``border:<A>-<B>:<k>``, one per connected piece, with
    the side labels (``labels`` default to the geometries' names)."""
    topo = TopoJSON(path, object_name)
    label_a, label_b = labels or (topo.name(id_a), topo.name(id_b))
    shared = sorted(topo.arc_indices(id_a) & topo.arc_indices(id_b))
    if not shared:
        raise GeofenceError(f"{topo.path}: geometries {id_a!r} and {id_b!r} share no border")
    chains = _chain([topo.arcs[i] for i in shared])
    area_a = topo.polygons(id_a, repair=False)
    shapely.prepare(area_a)
    geofences = []
    sides: dict[str, tuple[str, str]] = {}
    source = f"{topo.path.name}: arcs shared by ids {id_a} and {id_b}"
    for k, chain in enumerate(chains):
        left_is_a = _left_is_inside(chain, area_a)
        gid = f"border:{label_a}-{label_b}:{k}"
        geofences.append(
            Geofence(
                geofence_id=gid,
                name=f"{topo.name(id_a)} – {topo.name(id_b)} border ({k})",
                kind="line",
                coordinates=tuple((float(lat), float(lon)) for lon, lat in chain),
                severity=severity,
                source=source,
            )
        )
        sides[gid] = (label_a, label_b) if left_is_a else (label_b, label_a)
    return Border(tuple(geofences), sides)


def _chain(arcs: list[FloatArray]) -> list[FloatArray]:
    """Join arcs that meet end to end into the longest polylines (load-time, small counts)."""
    pending = [a for a in arcs if len(a) >= 2]
    chains: list[FloatArray] = []
    while pending:
        cur = pending.pop(0)
        grown = True
        while grown:
            grown = False
            for j, a in enumerate(pending):
                if np.array_equal(cur[-1], a[0]):
                    cur = np.concatenate([cur, a[1:]])
                elif np.array_equal(cur[-1], a[-1]):
                    cur = np.concatenate([cur, a[::-1][1:]])
                elif np.array_equal(cur[0], a[-1]):
                    cur = np.concatenate([a[:-1], cur])
                elif np.array_equal(cur[0], a[0]):
                    cur = np.concatenate([a[::-1][:-1], cur])
                else:
                    continue
                pending.pop(j)
                grown = True
                break
        keep = np.r_[True, np.any(np.diff(cur, axis=0) != 0, axis=1)]
        chains.append(cur[keep])
    return chains


def _left_is_inside(chain: FloatArray, area: shapely.Geometry) -> bool:
    """Vote over the chain's segments: is a point just left of each segment inside ``area``?"""
    a, b = chain[:-1], chain[1:]
    d = b - a
    length = np.hypot(d[:, 0], d[:, 1])
    ok = length > 0
    mid = (a[ok] + b[ok]) / 2
    normal_left = np.c_[-d[ok, 1], d[ok, 0]] / length[ok, None]
    eps = np.minimum(length[ok] * 0.25, 1e-3)[:, None]
    left = mid + normal_left * eps
    right = mid - normal_left * eps
    in_left = shapely.contains_xy(area, left[:, 0], left[:, 1])
    in_right = shapely.contains_xy(area, right[:, 0], right[:, 1])
    return int(np.sum(in_left & ~in_right)) >= int(np.sum(in_right & ~in_left))
