"""Geographic cells: the stable partition tracker workers own when the service scales out.

A cell is a ``size_deg`` x ``size_deg`` box of latitude and longitude, named by its integer row
and column: ``cell_id = row * n_cols + col`` with ``row = floor((lat + 90) / size)`` and
``col = floor((lon + 180) / size)`` (longitude wrapped to [-180, 180)). The partition never
changes while a deployment runs (every worker and ingest process must use the same
``size_deg``); which worker owns which cell may change at any time (leases).

Everything here is vectorised: ingest routes a whole batch with one call.
"""

from __future__ import annotations

import math

import numpy as np
import numpy.typing as npt

IntArray = npt.NDArray[np.int64]
FloatArray = npt.NDArray[np.float64]

#: The default cell size (degrees): about 1,100 km north-south, enough that a balloon stays in
#: one cell for many hours and an airliner for about an hour.
DEFAULT_SIZE_DEG = 10.0


class CellGrid:
    """The lat/lon grid of cells (see the module docstring)."""

    def __init__(self, size_deg: float = DEFAULT_SIZE_DEG) -> None:
        if not (math.isfinite(size_deg) and 0.1 <= size_deg <= 90.0 and (180.0 / size_deg) % 1 < 1e-9):
            raise ValueError(f"cell size {size_deg!r}: must divide 180 degrees, between 0.1 and 90")
        self.size_deg = float(size_deg)
        self.n_rows = round(180.0 / self.size_deg)
        self.n_cols = round(360.0 / self.size_deg)

    @property
    def n_cells(self) -> int:
        return self.n_rows * self.n_cols

    def cell_of(self, lat_deg: npt.ArrayLike, lon_deg: npt.ArrayLike) -> IntArray:
        """The cell id of each (lat, lon)."""
        lat = np.clip(np.asarray(lat_deg, dtype=np.float64), -90.0, 90.0)
        lon = (np.asarray(lon_deg, dtype=np.float64) + 180.0) % 360.0 - 180.0
        row = np.minimum(np.floor((lat + 90.0) / self.size_deg).astype(np.int64), self.n_rows - 1)
        col = np.minimum(np.floor((lon + 180.0) / self.size_deg).astype(np.int64), self.n_cols - 1)
        return np.asarray(row * self.n_cols + col, dtype=np.int64)

    def bounds(self, cell_id: int) -> tuple[float, float, float, float]:
        """``(min_lat, min_lon, max_lat, max_lon)`` of a cell."""
        row, col = divmod(int(cell_id), self.n_cols)
        lat0 = -90.0 + row * self.size_deg
        lon0 = -180.0 + col * self.size_deg
        return lat0, lon0, lat0 + self.size_deg, lon0 + self.size_deg

    def neighbours(self, cell_id: int) -> list[int]:
        """The up to eight cells around a cell (longitude wraps; the poles do not)."""
        row, col = divmod(int(cell_id), self.n_cols)
        out = []
        for dr in (-1, 0, 1):
            r = row + dr
            if not 0 <= r < self.n_rows:
                continue
            for dc in (-1, 0, 1):
                if dr == 0 and dc == 0:
                    continue
                out.append(r * self.n_cols + (col + dc) % self.n_cols)
        return sorted(set(out))
