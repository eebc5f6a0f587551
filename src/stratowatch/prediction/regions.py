"""Regions of interest and when (and how likely) ensemble members enter them.

A region is a polygon (one lat/lon ring; even-odd rule, longitudes unwrapped around the first
vertex so rings across ±180 work) or a circle (centre and radius, great-circle distance).
Paths are tested at their output samples and at ``substeps`` points linearly interpolated
between consecutive samples, all members x times at once.
"""

from __future__ import annotations

import math
from dataclasses import dataclass

import numpy as np
import numpy.typing as npt

from stratowatch.geo import haversine_m
from stratowatch.prediction.integrate import Prediction
from stratowatch.weather.grid import FloatArray


@dataclass(frozen=True, slots=True)
class Region:
    """A named polygon (``ring_lat_deg``/``ring_lon_deg``) or circle (``radius_m`` > 0)."""

    name: str
    ring_lat_deg: FloatArray
    ring_lon_deg: FloatArray
    centre_lat_deg: float = float("nan")
    centre_lon_deg: float = float("nan")
    radius_m: float = float("nan")

    @classmethod
    def polygon(cls, name: str, lat_deg: npt.ArrayLike, lon_deg: npt.ArrayLike) -> Region:
        lat = np.asarray(lat_deg, dtype=np.float64)
        lon = np.asarray(lon_deg, dtype=np.float64)
        if lat.shape != lon.shape or lat.ndim != 1 or lat.size < 3:
            raise ValueError(f"region {name!r}: a polygon needs matching lat/lon rings of >= 3 vertices")
        lon = lon[0] + ((lon - lon[0] + 180.0) % 360.0 - 180.0)
        return cls(name, lat, lon)

    @classmethod
    def circle(cls, name: str, lat_deg: float, lon_deg: float, radius_m: float) -> Region:
        if not radius_m > 0:
            raise ValueError(f"region {name!r}: radius must be positive")
        return cls(name, np.empty(0), np.empty(0), float(lat_deg), float(lon_deg), float(radius_m))

    @property
    def is_circle(self) -> bool:
        return math.isfinite(self.radius_m)

    def contains(self, lat_deg: npt.ArrayLike, lon_deg: npt.ArrayLike) -> npt.NDArray[np.bool_]:
        """Inside test for arrays of points (NaN points are outside)."""
        lat = np.asarray(lat_deg, dtype=np.float64)
        lon = np.asarray(lon_deg, dtype=np.float64)
        if self.is_circle:
            with np.errstate(invalid="ignore"):
                return np.asarray(
                    haversine_m(self.centre_lat_deg, self.centre_lon_deg, lat, lon) <= self.radius_m
                )
        return _even_odd(self.ring_lat_deg, self.ring_lon_deg, lat, lon)


def _even_odd(
    ring_lat: FloatArray, ring_lon: FloatArray, lat: FloatArray, lon: FloatArray
) -> npt.NDArray[np.bool_]:
    ref = ring_lon[0]
    with np.errstate(invalid="ignore"):
        x = ref + ((lon - ref + 180.0) % 360.0 - 180.0)
        inside = np.zeros(lat.shape, dtype=bool)
        cand = (
            (lat >= ring_lat.min()) & (lat <= ring_lat.max()) & (x >= ring_lon.min()) & (x <= ring_lon.max())
        )
    if not cand.any():
        return inside
    py, px = lat[cand], x[cand]
    hit = np.zeros(py.shape, dtype=bool)
    y0, x0 = ring_lat, ring_lon
    y1, x1 = np.roll(ring_lat, -1), np.roll(ring_lon, -1)
    for a_y, a_x, b_y, b_x in zip(y0, x0, y1, x1, strict=True):
        if a_y == b_y:
            continue
        crosses = (a_y > py) != (b_y > py)
        x_at = a_x + (py - a_y) * (b_x - a_x) / (b_y - a_y)
        hit ^= crosses & (px < x_at)
    inside[cand] = hit
    return inside


@dataclass(frozen=True, slots=True)
class RegionArrival:
    """Probability that a member enters the region, and the earliest/median entry time."""

    name: str
    probability: float
    members_entering: int
    earliest_time_s: float
    median_time_s: float


def region_arrival(prediction: Prediction, regions: list[Region], substeps: int = 4) -> list[RegionArrival]:
    """For each region: fraction of members whose path enters it, earliest and median entry time."""
    lat, lon, t = _densify(prediction, substeps)
    out = []
    for region in regions:
        inside = region.contains(lat, lon)
        entered = inside.any(axis=1)
        first = np.argmax(inside, axis=1)
        times = t[first[entered]]
        n = int(entered.sum())
        if prediction.backward:
            earliest = float(times.max()) if n else float("nan")
        else:
            earliest = float(times.min()) if n else float("nan")
        out.append(
            RegionArrival(
                name=region.name,
                probability=n / prediction.members,
                members_entering=n,
                earliest_time_s=earliest,
                median_time_s=float(np.median(times)) if n else float("nan"),
            )
        )
    return out


def _densify(prediction: Prediction, substeps: int) -> tuple[FloatArray, FloatArray, FloatArray]:
    lat, lon, t = prediction.lat_deg, prediction.lon_deg, prediction.time_s
    if substeps <= 1 or lat.shape[1] < 2:
        return lat, lon, t
    f = np.arange(substeps) / substeps
    dlon = (np.diff(lon, axis=1) + 180.0) % 360.0 - 180.0
    dense_lat = (lat[:, :-1, None] + np.diff(lat, axis=1)[:, :, None] * f).reshape(lat.shape[0], -1)
    dense_lon = (lon[:, :-1, None] + dlon[:, :, None] * f).reshape(lat.shape[0], -1)
    dense_t = (t[:-1, None] + np.diff(t)[:, None] * f).ravel()
    return (
        np.concatenate([dense_lat, lat[:, -1:]], axis=1),
        np.concatenate([dense_lon, lon[:, -1:]], axis=1),
        np.append(dense_t, t[-1]),
    )
