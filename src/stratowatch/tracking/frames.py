"""The Cartesian frame the tracker's states live in.

* :class:`EcefFrame` (the default): Earth-centred, Earth-fixed. Exact over any distance; the
  local vertical at each target comes from the WGS-84 ellipsoid.
* :class:`LocalFrame`: a flat east/north/up plane around an origin, for plots already given in
  local metres (the benchmark format) and small areas.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Protocol

import numpy as np
import numpy.typing as npt

from stratowatch import geo

FloatArray = npt.NDArray[np.float64]


class Frame(Protocol):
    @property
    def name(self) -> str: ...

    def enu_basis(self, pos: FloatArray) -> FloatArray:
        """(n, 3, 3) rows east, north, up (frame coordinates) at positions (n, 3)."""
        ...

    def from_geodetic(self, lat_deg: FloatArray, lon_deg: FloatArray, alt_m: FloatArray) -> FloatArray: ...

    def to_geodetic(self, pos: FloatArray) -> FloatArray: ...

    def altitude(self, pos: FloatArray) -> FloatArray: ...

    def ground(self, pos: FloatArray) -> FloatArray:
        """The point at altitude 0 below each position."""
        ...

    def site(
        self, lat_deg: FloatArray, lon_deg: FloatArray, alt_m: FloatArray
    ) -> tuple[FloatArray, FloatArray]:
        """Positions and ENU bases of sensor sites."""
        ...


@dataclass(frozen=True, slots=True)
class EcefFrame:
    name: str = "ecef"

    def enu_basis(self, pos: FloatArray) -> FloatArray:
        g = geo.ecef_to_geodetic(pos)
        return geo.enu_basis(g[..., 0], g[..., 1])

    def from_geodetic(self, lat_deg: FloatArray, lon_deg: FloatArray, alt_m: FloatArray) -> FloatArray:
        return geo.geodetic_to_ecef(lat_deg, lon_deg, alt_m)

    def to_geodetic(self, pos: FloatArray) -> FloatArray:
        return geo.ecef_to_geodetic(pos)

    def altitude(self, pos: FloatArray) -> FloatArray:
        return geo.ecef_to_geodetic(pos)[..., 2]

    def ground(self, pos: FloatArray) -> FloatArray:
        g = geo.ecef_to_geodetic(pos)
        return geo.geodetic_to_ecef(g[..., 0], g[..., 1], 0.0)

    def site(
        self, lat_deg: FloatArray, lon_deg: FloatArray, alt_m: FloatArray
    ) -> tuple[FloatArray, FloatArray]:
        return geo.geodetic_to_ecef(lat_deg, lon_deg, alt_m), geo.enu_basis(lat_deg, lon_deg)


@dataclass(frozen=True, slots=True)
class LocalFrame:
    """Flat ENU metres around (origin_lat_deg, origin_lon_deg, 0): z is altitude."""

    origin_lat_deg: float = 45.0
    origin_lon_deg: float = -100.0
    name: str = "local"

    def enu_basis(self, pos: FloatArray) -> FloatArray:
        return np.broadcast_to(np.eye(3), (*pos.shape[:-1], 3, 3)).copy()

    def from_geodetic(self, lat_deg: FloatArray, lon_deg: FloatArray, alt_m: FloatArray) -> FloatArray:
        enu = geo.geodetic_to_enu(lat_deg, lon_deg, 0.0, self.origin_lat_deg, self.origin_lon_deg, 0.0)
        enu[..., 2] = alt_m
        return enu

    def to_geodetic(self, pos: FloatArray) -> FloatArray:
        flat = np.array(pos, dtype=np.float64, copy=True)
        flat[..., 2] = 0.0
        g = geo.enu_to_geodetic(flat, self.origin_lat_deg, self.origin_lon_deg, 0.0)
        g[..., 2] = pos[..., 2]
        return g

    def altitude(self, pos: FloatArray) -> FloatArray:
        return np.asarray(pos[..., 2])

    def ground(self, pos: FloatArray) -> FloatArray:
        g = np.array(pos, dtype=np.float64, copy=True)
        g[..., 2] = 0.0
        return g

    def site(
        self, lat_deg: FloatArray, lon_deg: FloatArray, alt_m: FloatArray
    ) -> tuple[FloatArray, FloatArray]:
        p = self.from_geodetic(
            np.asarray(lat_deg, float), np.asarray(lon_deg, float), np.asarray(alt_m, float)
        )
        return p, self.enu_basis(p)
