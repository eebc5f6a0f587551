"""WGS-84 geometry, vectorised: geodetic <-> ECEF <-> local ENU, and radar polar <-> ECEF.

Every function takes and returns numpy arrays (any leading shape; the last axis holds the
components) and is exact on the ellipsoid, so it stays correct over continental distances where
a flat plane would not. Angles are degrees at the interface, radians inside.

Equations: geodetic -> ECEF is the textbook prime-vertical form; ECEF -> geodetic is Heikkinen's
closed form (1982, as given by Zhu 1994), accurate to well below a millimetre at any altitude an
aircraft or balloon flies.
"""

from __future__ import annotations

import numpy as np
import numpy.typing as npt

FloatArray = npt.NDArray[np.float64]

WGS84_A = 6378137.0
WGS84_F = 1.0 / 298.257223563
WGS84_B = WGS84_A * (1.0 - WGS84_F)
WGS84_E2 = WGS84_F * (2.0 - WGS84_F)
WGS84_EP2 = WGS84_E2 / (1.0 - WGS84_E2)
#: Mean Earth radius (m), for great-circle distances where the ellipsoid does not matter.
EARTH_RADIUS_M = 6371008.8


def geodetic_to_ecef(lat_deg: npt.ArrayLike, lon_deg: npt.ArrayLike, alt_m: npt.ArrayLike) -> FloatArray:
    """Geodetic latitude, longitude (degrees) and ellipsoidal height (m) -> ECEF (..., 3) metres."""
    lat = np.radians(np.asarray(lat_deg, dtype=np.float64))
    lon = np.radians(np.asarray(lon_deg, dtype=np.float64))
    h = np.asarray(alt_m, dtype=np.float64)
    sin_lat, cos_lat = np.sin(lat), np.cos(lat)
    n = WGS84_A / np.sqrt(1.0 - WGS84_E2 * sin_lat * sin_lat)
    x = (n + h) * cos_lat * np.cos(lon)
    y = (n + h) * cos_lat * np.sin(lon)
    z = (n * (1.0 - WGS84_E2) + h) * sin_lat
    return np.stack(np.broadcast_arrays(x, y, z), axis=-1)


def ecef_to_geodetic(ecef_m: npt.ArrayLike) -> FloatArray:
    """ECEF (..., 3) metres -> (..., 3) of latitude (deg), longitude (deg), height (m)."""
    p = np.asarray(ecef_m, dtype=np.float64)
    x, y, z = p[..., 0], p[..., 1], p[..., 2]
    a, b, e2, ep2 = WGS84_A, WGS84_B, WGS84_E2, WGS84_EP2
    r = np.hypot(x, y)
    # Heikkinen's closed form.
    big_f = 54.0 * b * b * z * z
    g = r * r + (1.0 - e2) * z * z - e2 * (a * a - b * b)
    c = e2 * e2 * big_f * r * r / (g * g * g)
    s = np.cbrt(1.0 + c + np.sqrt(c * c + 2.0 * c))
    k = s + 1.0 + 1.0 / s
    pp = big_f / (3.0 * k * k * g * g)
    q = np.sqrt(1.0 + 2.0 * e2 * e2 * pp)
    r0 = -(pp * e2 * r) / (1.0 + q) + np.sqrt(
        np.maximum(
            0.5 * a * a * (1.0 + 1.0 / q) - pp * (1.0 - e2) * z * z / (q * (1.0 + q)) - 0.5 * pp * r * r,
            0.0,
        )
    )
    u = np.hypot(r - e2 * r0, z)
    v = np.sqrt((r - e2 * r0) ** 2 + (1.0 - e2) * z * z)
    z0 = b * b * z / (a * v)
    h = u * (1.0 - b * b / (a * v))
    lat = np.arctan2(z + ep2 * z0, r)
    lon = np.arctan2(y, x)
    return np.stack([np.degrees(lat), np.degrees(lon), h], axis=-1)


def enu_basis(lat_deg: npt.ArrayLike, lon_deg: npt.ArrayLike) -> FloatArray:
    """Rotation matrices (..., 3, 3) whose rows are the east, north and up unit vectors in ECEF.

    ``enu = basis @ (ecef - origin)`` and ``ecef = origin + basis.T @ enu``.
    """
    lat = np.radians(np.asarray(lat_deg, dtype=np.float64))
    lon = np.radians(np.asarray(lon_deg, dtype=np.float64))
    sl, cl = np.sin(lat), np.cos(lat)
    so, co = np.sin(lon), np.cos(lon)
    zero = np.zeros_like(sl * so)
    east = np.stack(np.broadcast_arrays(-so, co, zero), axis=-1)
    north = np.stack(np.broadcast_arrays(-sl * co, -sl * so, cl), axis=-1)
    up = np.stack(np.broadcast_arrays(cl * co, cl * so, sl), axis=-1)
    return np.stack([east, north, up], axis=-2)


def ecef_to_enu(
    ecef_m: npt.ArrayLike, origin_lat_deg: float, origin_lon_deg: float, origin_alt_m: float
) -> FloatArray:
    """ECEF points (..., 3) -> east/north/up (..., 3) metres relative to one origin."""
    origin = geodetic_to_ecef(origin_lat_deg, origin_lon_deg, origin_alt_m)
    basis = enu_basis(origin_lat_deg, origin_lon_deg)
    return (np.asarray(ecef_m, dtype=np.float64) - origin) @ basis.T


def enu_to_ecef(
    enu_m: npt.ArrayLike, origin_lat_deg: float, origin_lon_deg: float, origin_alt_m: float
) -> FloatArray:
    """East/north/up (..., 3) metres relative to one origin -> ECEF (..., 3)."""
    origin = geodetic_to_ecef(origin_lat_deg, origin_lon_deg, origin_alt_m)
    basis = enu_basis(origin_lat_deg, origin_lon_deg)
    return np.asarray(enu_m, dtype=np.float64) @ basis + origin


def geodetic_to_enu(
    lat_deg: npt.ArrayLike,
    lon_deg: npt.ArrayLike,
    alt_m: npt.ArrayLike,
    origin_lat_deg: float,
    origin_lon_deg: float,
    origin_alt_m: float,
) -> FloatArray:
    return ecef_to_enu(
        geodetic_to_ecef(lat_deg, lon_deg, alt_m), origin_lat_deg, origin_lon_deg, origin_alt_m
    )


def enu_to_geodetic(
    enu_m: npt.ArrayLike, origin_lat_deg: float, origin_lon_deg: float, origin_alt_m: float
) -> FloatArray:
    return ecef_to_geodetic(enu_to_ecef(enu_m, origin_lat_deg, origin_lon_deg, origin_alt_m))


def enu_to_polar(enu_m: npt.ArrayLike) -> FloatArray:
    """Local ENU (..., 3) -> (..., 3) of slant range (m), azimuth (deg from north, clockwise,
    0..360) and elevation (deg above the site's horizontal plane)."""
    enu = np.asarray(enu_m, dtype=np.float64)
    e, n, u = enu[..., 0], enu[..., 1], enu[..., 2]
    rng = np.sqrt(e * e + n * n + u * u)
    az = np.degrees(np.arctan2(e, n)) % 360.0
    el = np.degrees(np.arctan2(u, np.hypot(e, n)))
    return np.stack([rng, az, el], axis=-1)


def polar_to_enu(polar: npt.ArrayLike) -> FloatArray:
    """(..., 3) of range (m), azimuth (deg), elevation (deg) -> local ENU (..., 3) metres."""
    p = np.asarray(polar, dtype=np.float64)
    rng, az, el = p[..., 0], np.radians(p[..., 1]), np.radians(p[..., 2])
    ce = np.cos(el)
    return np.stack([rng * ce * np.sin(az), rng * ce * np.cos(az), rng * np.sin(el)], axis=-1)


def polar_to_ecef(
    polar: npt.ArrayLike,
    site_lat_deg: npt.ArrayLike,
    site_lon_deg: npt.ArrayLike,
    site_alt_m: npt.ArrayLike,
) -> FloatArray:
    """Radar plots (range, azimuth, elevation) from sites (broadcast) -> ECEF (..., 3)."""
    enu = polar_to_enu(polar)
    basis = enu_basis(site_lat_deg, site_lon_deg)
    origin = geodetic_to_ecef(site_lat_deg, site_lon_deg, site_alt_m)
    return origin + np.einsum("...i,...ij->...j", enu, basis)


def ecef_to_polar(
    ecef_m: npt.ArrayLike,
    site_lat_deg: npt.ArrayLike,
    site_lon_deg: npt.ArrayLike,
    site_alt_m: npt.ArrayLike,
) -> FloatArray:
    """ECEF (..., 3) -> (range, azimuth, elevation) seen from sites (broadcast)."""
    basis = enu_basis(site_lat_deg, site_lon_deg)
    origin = geodetic_to_ecef(site_lat_deg, site_lon_deg, site_alt_m)
    enu = np.einsum("...ij,...j->...i", basis, np.asarray(ecef_m, dtype=np.float64) - origin)
    return enu_to_polar(enu)


def elevation_for_altitude(
    range_m: npt.ArrayLike,
    alt_m: npt.ArrayLike,
    site_alt_m: npt.ArrayLike,
    radius_m: float = EARTH_RADIUS_M,
) -> FloatArray:
    """Elevation (deg) of a target at slant range and known altitude above a spherical Earth.

    Used for 2-D radar plots that carry a Mode C height instead of an elevation angle
    (law of cosines in the triangle Earth centre / site / target).
    """
    r = np.asarray(range_m, dtype=np.float64)
    rs = radius_m + np.asarray(site_alt_m, dtype=np.float64)
    rt = radius_m + np.asarray(alt_m, dtype=np.float64)
    sin_el = (rt * rt - rs * rs - r * r) / (2.0 * rs * np.maximum(r, 1e-9))
    return np.degrees(np.arcsin(np.clip(sin_el, -1.0, 1.0)))


def haversine_m(
    lat1: npt.ArrayLike, lon1: npt.ArrayLike, lat2: npt.ArrayLike, lon2: npt.ArrayLike
) -> FloatArray:
    """Great-circle distance (m) on the mean sphere, broadcast."""
    p1, p2 = np.radians(np.asarray(lat1, float)), np.radians(np.asarray(lat2, float))
    dl = np.radians(np.asarray(lon2, float) - np.asarray(lon1, float))
    a = np.sin((p2 - p1) / 2) ** 2 + np.cos(p1) * np.cos(p2) * np.sin(dl / 2) ** 2
    return np.asarray(2.0 * EARTH_RADIUS_M * np.arcsin(np.sqrt(np.clip(a, 0.0, 1.0))))


def destination(
    lat_deg: npt.ArrayLike,
    lon_deg: npt.ArrayLike,
    bearing_deg: npt.ArrayLike,
    distance_m: npt.ArrayLike,
) -> tuple[FloatArray, FloatArray]:
    """Point reached from (lat, lon) along a great circle with initial bearing and distance."""
    lat, lon = np.radians(np.asarray(lat_deg, float)), np.radians(np.asarray(lon_deg, float))
    brg = np.radians(np.asarray(bearing_deg, float))
    d = np.asarray(distance_m, float) / EARTH_RADIUS_M
    lat2 = np.arcsin(np.sin(lat) * np.cos(d) + np.cos(lat) * np.sin(d) * np.cos(brg))
    lon2 = lon + np.arctan2(np.sin(brg) * np.sin(d) * np.cos(lat), np.cos(d) - np.sin(lat) * np.sin(lat2))
    return np.degrees(lat2), (np.degrees(lon2) + 540.0) % 360.0 - 180.0
