"""The one in-memory form of a wind field that the prediction kernels read.

Every reader (GRIB2, NetCDF, soundings, flight-derived profiles, analytic fields) produces a
:class:`WindGrid`: winds on pressure levels over a regular latitude/longitude grid, with the
geopotential height of each level at each point so that altitude queries need no standard
atmosphere (the standard atmosphere fills ``height_m`` only where the data has no heights).

Conventions (enforced by :meth:`WindGrid.validate`):

* ``time_s``: (nt,) ascending POSIX seconds UTC (nt >= 1).
* ``pressure_hpa``: (nz,) strictly descending (surface first, so heights ascend).
* ``lat_deg``: (ny,) strictly ascending. ``lon_deg``: (nx,) strictly ascending, in [-180, 360);
  ``global_lon`` is True when the grid wraps around the globe (interpolate across the seam).
* ``u_mps``, ``v_mps``, ``height_m``: (nt, nz, ny, nx) float64, earth-relative (east, north).
* A horizontally uniform profile (a sounding) is a grid with ny = nx = 2 spanning the globe.
"""

from __future__ import annotations

from dataclasses import dataclass, field

import numpy as np
import numpy.typing as npt

FloatArray = npt.NDArray[np.float64]


@dataclass(slots=True)
class WindGrid:
    time_s: FloatArray
    pressure_hpa: FloatArray
    lat_deg: FloatArray
    lon_deg: FloatArray
    u_mps: FloatArray
    v_mps: FloatArray
    height_m: FloatArray
    global_lon: bool = False
    w_mps: FloatArray | None = None
    temperature_k: FloatArray | None = None
    source: str = ""
    notes: list[str] = field(default_factory=list)

    def validate(self) -> WindGrid:
        nt, nz, ny, nx = (len(self.time_s), len(self.pressure_hpa), len(self.lat_deg), len(self.lon_deg))
        shape = (nt, nz, ny, nx)
        for name in ("u_mps", "v_mps", "height_m"):
            arr = getattr(self, name)
            if arr.shape != shape:
                raise ValueError(f"{self.source}: {name} has shape {arr.shape}, expected {shape}")
        if nt < 1 or nz < 2 or ny < 2 or nx < 2:
            raise ValueError(f"{self.source}: wind grid too small {shape}")
        if np.any(np.diff(self.time_s) <= 0):
            raise ValueError(f"{self.source}: times must be strictly ascending")
        if np.any(np.diff(self.pressure_hpa) >= 0):
            raise ValueError(f"{self.source}: pressure levels must be strictly descending")
        if np.any(np.diff(self.lat_deg) <= 0) or np.any(np.diff(self.lon_deg) <= 0):
            raise ValueError(f"{self.source}: latitudes and longitudes must be strictly ascending")
        return self
