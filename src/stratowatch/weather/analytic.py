"""A realistic, deterministic wind field for tests and the demo (no files needed).

The field, on a global regular grid and standard pressure levels:

* a westerly jet in each hemisphere, peaking at ``jet_max_mps`` near 225 hPa and 40 deg
  latitude (Gaussian in ln p and latitude), on a weak tropospheric westerly;
* a wavenumber-``wave_number`` meander in the jet: a meridional wind that travels east at
  ``wave_phase_speed_mps`` (so the field changes with time);
* a weaker stratospheric wind at 50-70 hPa (``strat_speed_mps``) whose direction turns through
  a full circle every ``strat_period_h`` hours (a balloon at float does not keep going one way);
* standard-atmosphere heights and temperatures (so height <-> pressure is the ISA's).

Wind is zero at the poles (every term carries a ``cos(lat)`` factor) so the field is continuous
there. All terms are analytic, so tests can check interpolated values against the formula via
:func:`analytic_wind`.
"""

from __future__ import annotations

import numpy as np
import numpy.typing as npt

from stratowatch.weather.grid import FloatArray, WindGrid
from stratowatch.weather.heights import isa_height_m, isa_temperature_k

#: Default levels (hPa), surface first.
STANDARD_LEVELS_HPA = (
    1000.0, 925.0, 850.0, 700.0, 500.0, 400.0, 300.0, 250.0, 200.0, 150.0,
    100.0, 70.0, 50.0, 30.0, 20.0, 10.0,
)  # fmt: skip

JET_PRESSURE_HPA = 225.0
JET_LAT_DEG = 40.0
STRAT_PRESSURE_HPA = 60.0


def analytic_wind(
    time_s: npt.ArrayLike,
    pressure_hpa: npt.ArrayLike,
    lat_deg: npt.ArrayLike,
    lon_deg: npt.ArrayLike,
    *,
    t0_s: float = 0.0,
    jet_max_mps: float = 45.0,
    wave_number: int = 4,
    wave_amplitude_mps: float = 12.0,
    wave_phase_speed_mps: float = 8.0,
    strat_speed_mps: float = 10.0,
    strat_period_h: float = 96.0,
) -> tuple[FloatArray, FloatArray]:
    """(u, v) in m/s of the analytic field at broadcastable arrays of points."""
    t = np.asarray(time_s, dtype=np.float64) - t0_s
    p = np.asarray(pressure_hpa, dtype=np.float64)
    lat = np.radians(np.asarray(lat_deg, dtype=np.float64))
    lon = np.radians(np.asarray(lon_deg, dtype=np.float64))
    coslat = np.cos(lat)
    jet_vertical = np.exp(-((np.log(p / JET_PRESSURE_HPA) / 0.45) ** 2))
    jet_meridional = np.exp(-(((np.abs(np.degrees(lat)) - JET_LAT_DEG) / 12.0) ** 2))
    trop = np.clip(np.log(1000.0 / p) / np.log(1000.0 / JET_PRESSURE_HPA), 0.0, 1.0)
    u_jet = jet_max_mps * jet_vertical * jet_meridional + 8.0 * trop * jet_vertical * coslat
    # travelling wave in the jet: phase = k (lon - c t / (a cos 40))
    angular_speed = wave_phase_speed_mps / (6371000.0 * np.cos(np.radians(JET_LAT_DEG)))
    phase = wave_number * (lon - angular_speed * t)
    v_wave = wave_amplitude_mps * jet_vertical * jet_meridional * np.sin(phase)
    strat_vertical = np.exp(-((np.log(p / STRAT_PRESSURE_HPA) / 0.35) ** 2))
    turn = 2.0 * np.pi * t / (strat_period_h * 3600.0)
    u_strat = strat_speed_mps * strat_vertical * coslat * np.cos(turn)
    v_strat = strat_speed_mps * strat_vertical * coslat * np.sin(turn)
    jet_scale = coslat / np.cos(np.radians(JET_LAT_DEG))  # 1 at the jet core, 0 at the poles
    u = u_jet * jet_scale + u_strat
    v = v_wave * jet_scale + v_strat
    return np.asarray(u, dtype=np.float64), np.asarray(v, dtype=np.float64)


def analytic_field(
    t0_s: float = 1_675_209_600.0,
    hours: float = 72.0,
    step_h: float = 6.0,
    resolution_deg: float = 2.5,
    levels_hpa: tuple[float, ...] = STANDARD_LEVELS_HPA,
    **params: float,
) -> WindGrid:
    """The analytic field sampled as a global :class:`WindGrid`.

    ``t0_s`` (default 2023-02-01 00Z) to ``t0_s + hours`` every ``step_h`` hours; a global grid
    of ``resolution_deg`` (longitudes 0..360-res, ``global_lon=True``; latitudes -90..90).
    ``params`` are passed to :func:`analytic_wind` (``jet_max_mps`` and so on).
    """
    if resolution_deg <= 0 or 180.0 / resolution_deg != round(180.0 / resolution_deg):
        raise ValueError(f"resolution_deg must divide 180, got {resolution_deg}")
    times = t0_s + np.arange(0.0, hours + 1e-9, step_h) * 3600.0
    levels = np.asarray(levels_hpa, dtype=np.float64)
    lat = np.linspace(-90.0, 90.0, round(180.0 / resolution_deg) + 1)
    lon = np.arange(round(360.0 / resolution_deg), dtype=np.float64) * resolution_deg
    u, v = analytic_wind(
        times[:, None, None, None],
        levels[None, :, None, None],
        lat[None, None, :, None],
        lon[None, None, None, :],
        t0_s=t0_s,
        **params,  # type: ignore[arg-type]
    )
    shape = (len(times), len(levels), len(lat), len(lon))
    heights = isa_height_m(levels)
    return WindGrid(
        time_s=times,
        pressure_hpa=levels,
        lat_deg=lat,
        lon_deg=lon,
        u_mps=np.ascontiguousarray(np.broadcast_to(u, shape), dtype=np.float64),
        v_mps=np.ascontiguousarray(np.broadcast_to(v, shape), dtype=np.float64),
        height_m=np.ascontiguousarray(np.broadcast_to(heights[None, :, None, None], shape)),
        global_lon=True,
        heights_geopotential=True,
        temperature_k=np.ascontiguousarray(
            np.broadcast_to(isa_temperature_k(heights)[None, :, None, None], shape)
        ),
        source="analytic",
        notes=["analytic field: westerly jet at 225 hPa, turning 60 hPa wind, ISA heights"],
    ).validate()
