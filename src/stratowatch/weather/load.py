"""``load_winds``: one or more wind files of any supported kind into one :class:`WindGrid`.

The format is picked by content, not by name:

=====================================  =========================================
first bytes                            reader
=====================================  =========================================
``GRIB``                               :func:`~.gribfile.read_grib` (GRIB1/2)
``CDF\\x01``, ``CDF\\x02``, ``\\x89HDF``   :func:`~.netcdf.read_netcdf`
UWyo CSV / UWyo text / IGRA2 header    :func:`~.soundings.read_sounding_file`
``PK`` (KMZ), ``<kml``, flight CSV     flight track -> :func:`~.flight_profile.flight_wind_profile`
=====================================  =========================================

Several files are merged along time when they are on the same grid (same latitudes and
longitudes); levels are reduced to those every file has (noted). Two files with the same
valid time are an error, as are files on different grids or of different kinds.
"""

from __future__ import annotations

import logging
import time
from collections.abc import Sequence
from pathlib import Path
from typing import Literal

import numpy as np

from stratowatch.weather.errors import WindFormatError
from stratowatch.weather.grid import WindGrid

log = logging.getLogger(__name__)

#: Seconds each file took to load in the last :func:`load_winds` call (path -> s).
LAST_LOAD_S: dict[str, float] = {}


def sniff_wind_format(path: str | Path) -> str:
    """'grib', 'netcdf', 'sounding' or 'flight' from a file's first bytes."""
    from stratowatch.ingest.kml import is_flight_csv
    from stratowatch.weather.soundings import is_igra2, is_uwyo_csv, is_uwyo_text

    p = Path(path)
    try:
        with p.open("rb") as f:
            head = f.read(4096)
    except OSError as exc:
        raise WindFormatError(f"{p}: cannot read ({exc.strerror})") from None
    if head[:4] == b"GRIB":
        return "grib"
    if head[:4] in (b"CDF\x01", b"CDF\x02", b"CDF\x05") or head[:8] == b"\x89HDF\r\n\x1a\n":
        return "netcdf"
    if is_uwyo_csv(head) or is_igra2(head) or is_uwyo_text(head):
        return "sounding"
    if head[:2] == b"PK" or b"<kml" in head[:1024] or is_flight_csv(head):
        return "flight"
    raise WindFormatError(
        f"{p}: not a wind file this program reads (GRIB, NetCDF, UWyo CSV/text, IGRA2 sounding, "
        "KML/KMZ/CSV flight)"
    )


def load_wind_file(
    path: str | Path,
    *,
    time_s: float | None = None,
    lambert_domain: Literal["crop", "mask"] = "crop",
) -> WindGrid:
    """One file as a :class:`WindGrid` (``time_s`` picks one sounding of an IGRA2 file;
    ``lambert_domain`` see :func:`~stratowatch.weather.gribfile.read_grib`)."""
    kind = sniff_wind_format(path)
    if kind == "grib":
        from stratowatch.weather.gribfile import read_grib

        return read_grib(path, lambert_domain=lambert_domain)
    if kind == "netcdf":
        from stratowatch.weather.netcdf import read_netcdf

        return read_netcdf(path)
    if kind == "sounding":
        from stratowatch.weather.soundings import read_sounding_file

        return read_sounding_file(path, time_s)
    from stratowatch.ingest.kml import FlightFormatError, read_flight
    from stratowatch.weather.flight_profile import flight_wind_profile

    try:
        return flight_wind_profile(read_flight(path))
    except FlightFormatError as exc:
        raise WindFormatError(str(exc)) from None


def load_winds(
    paths: str | Path | Sequence[str | Path],
    *,
    time_s: float | None = None,
    lambert_domain: Literal["crop", "mask"] = "crop",
) -> WindGrid:
    """Read and merge wind files (several times on one grid) into one :class:`WindGrid`.

    Raises :class:`WindFormatError` naming the file for unreadable input or files that do not
    merge (different grids, the same time twice, no common levels).
    """
    if isinstance(paths, (str, Path)):
        paths = [paths]
    if not paths:
        raise WindFormatError("no wind files given")
    grids = []
    LAST_LOAD_S.clear()
    for p in paths:
        t0 = time.perf_counter()
        grids.append(load_wind_file(p, time_s=time_s, lambert_domain=lambert_domain))
        LAST_LOAD_S[str(p)] = time.perf_counter() - t0
        log.info("%s: loaded in %.2f s", p, LAST_LOAD_S[str(p)])
    return merge_times(grids)


def merge_times(grids: Sequence[WindGrid]) -> WindGrid:
    """Concatenate grids on the same horizontal grid along time (levels: the common ones)."""
    if len(grids) == 1:
        return grids[0]
    first = grids[0]
    for g in grids[1:]:
        if (
            g.lat_deg.shape != first.lat_deg.shape
            or g.lon_deg.shape != first.lon_deg.shape
            or not (np.allclose(g.lat_deg, first.lat_deg) and np.allclose(g.lon_deg, first.lon_deg))
        ):
            raise WindFormatError(
                f"{g.source}: not on the same grid as {first.source} "
                f"({g.lat_deg.size}x{g.lon_deg.size} vs {first.lat_deg.size}x{first.lon_deg.size}"
                "); only files on one grid at different times can be merged"
            )
    common = first.pressure_hpa
    for g in grids[1:]:
        common = common[np.isin(np.round(common, 3), np.round(g.pressure_hpa, 3))]
    if common.shape[0] < 2:
        raise WindFormatError(
            f"{grids[-1].source}: fewer than 2 pressure levels in common with {first.source}"
        )
    notes = list(dict.fromkeys(n for g in grids for n in g.notes))
    if any(g.pressure_hpa.shape[0] != common.shape[0] for g in grids):
        notes.append(f"merged on the {common.shape[0]} levels all files have")
    order = np.argsort([float(g.time_s[0]) for g in grids], kind="stable")
    grids = [grids[i] for i in order]

    def cat(name: str) -> np.ndarray | None:
        parts = []
        for g in grids:
            arr = getattr(g, name)
            if arr is None:
                return None
            k = np.flatnonzero(np.isin(np.round(g.pressure_hpa, 3), np.round(common, 3)))
            parts.append(arr[:, k])
        return np.ascontiguousarray(np.concatenate(parts, axis=0))

    times = np.concatenate([g.time_s for g in grids])
    if np.any(np.diff(times) <= 0):
        dup = times[np.flatnonzero(np.diff(times) <= 0)[0] + 1]
        names = [g.source for g in grids if np.isin(dup, g.time_s)]
        raise WindFormatError(f"{', '.join(names)}: the same valid time (or overlapping times) twice")
    u, v, h = cat("u_mps"), cat("v_mps"), cat("height_m")
    assert u is not None and v is not None and h is not None
    return WindGrid(
        time_s=times,
        pressure_hpa=common.copy(),
        lat_deg=first.lat_deg.copy(),
        lon_deg=first.lon_deg.copy(),
        u_mps=u,
        v_mps=v,
        height_m=h,
        global_lon=first.global_lon,
        heights_geopotential=first.heights_geopotential,
        w_mps=cat("w_mps"),
        temperature_k=cat("temperature_k"),
        source=" + ".join(g.source for g in grids),
        notes=notes,
    ).validate()
