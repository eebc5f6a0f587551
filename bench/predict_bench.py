"""Benchmark: a 1,000-member, 72-hour drift ensemble at 60 s steps on the real GFS field.

    .venv/bin/python bench/predict_bench.py [--members 1000] [--hours 72] [--repeat 3] [--skip-numpy]

Reports (one JSON line at the end, plus a readable summary):
* load_s: reading the NetCDF into a WindGrid (stratowatch.weather.load.load_winds);
* numba_s: stratowatch.prediction.integrate (RK4 on the sphere, per-column height bracketing,
  OU wind error on every member but member 0), best of --repeat, after one warm-up call that
  compiles or loads the cached kernels (compile_s);
* numpy_s: a plain-numpy RK4 written here, vectorised over members, with trilinear
  interpolation (bilinear in lat/lon, linear in a level index taken from the field's mean height
  profile), no wind error: the baseline the issue names; ratio = numpy_s / numba_s;
* one_member_s: a single deterministic member (Tawhiri does one 72 h float in about 31 ms);
* the end-point distance between the two schemes' deterministic runs (they differ only in the
  vertical interpolation);
* GPU: no GPU backend is implemented; reported as skipped.
Times are wall-clock (perf_counter) on one core; cpu_s is process time of the numba run.
"""

from __future__ import annotations

import argparse
import json
import sys
import time
from dataclasses import replace
from pathlib import Path

import numpy as np

from stratowatch.geo import haversine_m
from stratowatch.prediction import WindErrorModel, integrate
from stratowatch.weather.heights import geopotential_to_geometric_m
from stratowatch.weather.load import load_winds

REPO_ROOT = Path(__file__).resolve().parents[1]
GFS = REPO_ROOT.parent / "shared" / "data" / "wind" / "gfs_northamerica_2010102612_1deg.nc"
R = 6371008.8


def numpy_rk4(grid, lat0, lon0, alt0, hours, dt=60.0):
    """Plain numpy RK4 (float at constant altitude) with trilinear interpolation."""
    u = grid.u_mps[0]
    v = grid.v_mps[0]
    lats, lons = grid.lat_deg, grid.lon_deg
    heights = geopotential_to_geometric_m(grid.height_m) if grid.heights_geopotential else grid.height_m
    mean_h = heights[0].mean(axis=(1, 2))
    zf = np.interp(alt0, mean_h, np.arange(len(mean_h)))
    k = np.clip(np.floor(zf).astype(int), 0, len(mean_h) - 2)
    wz = zf - k
    dlat, dlon = lats[1] - lats[0], lons[1] - lons[0]

    def wind(lat, lon):
        y = np.clip((lat - lats[0]) / dlat, 0, len(lats) - 1.000001)
        x = np.clip(((lon - lons[0]) % 360.0) / dlon, 0, len(lons) - 1.000001)
        iy, ix = y.astype(int), x.astype(int)
        wy, wx = y - iy, x - ix
        out = []
        for f in (u, v):
            acc = 0.0
            for dz, w_z in ((0, 1 - wz), (1, wz)):
                kk = k + dz
                c00 = f[kk, iy, ix]
                c01 = f[kk, iy, ix + 1]
                c10 = f[kk, iy + 1, ix]
                c11 = f[kk, iy + 1, ix + 1]
                acc = acc + w_z * ((1 - wy) * ((1 - wx) * c00 + wx * c01) + wy * ((1 - wx) * c10 + wx * c11))
            out.append(acc)
        return out

    def rates(lat, lon):
        uu, vv = wind(lat, lon)
        return np.degrees(vv / (R + alt0)), np.degrees(uu / ((R + alt0) * np.cos(np.radians(lat))))

    lat, lon = lat0.copy(), lon0.copy()
    for _ in range(round(hours * 3600 / dt)):
        a1, b1 = rates(lat, lon)
        a2, b2 = rates(lat + 0.5 * dt * a1, lon + 0.5 * dt * b1)
        a3, b3 = rates(lat + 0.5 * dt * a2, lon + 0.5 * dt * b2)
        a4, b4 = rates(lat + dt * a3, lon + dt * b3)
        lat = lat + dt / 6 * (a1 + 2 * a2 + 2 * a3 + a4)
        lon = lon + dt / 6 * (b1 + 2 * b2 + 2 * b3 + b4)
    return lat, (lon + 180.0) % 360.0 - 180.0


def main() -> int:
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--members", type=int, default=1000)
    ap.add_argument("--hours", type=float, default=72.0)
    ap.add_argument("--repeat", type=int, default=3)
    ap.add_argument("--skip-numpy", action="store_true")
    args = ap.parse_args()
    if not GFS.exists():
        print(f"skipped: {GFS} not found", file=sys.stderr)
        return 0
    t0 = time.perf_counter()
    grid = load_winds(GFS)
    load_s = time.perf_counter() - t0
    n = args.members
    rng = np.random.default_rng(0)
    lat0 = 45.0 + rng.normal(0, 0.05, n)
    lon0 = -140.0 + rng.normal(0, 0.05, n)
    alt0 = 18000.0 + rng.normal(0, 300.0, n)
    lat0[0], lon0[0], alt0[0] = 45.0, -140.0, 18000.0
    scale = np.ones(n)
    scale[0] = 0.0
    t_start = float(grid.time_s[0])
    kwargs = dict(wind_error=WindErrorModel(), noise_scale=scale, seed=1)
    t0 = time.perf_counter()
    integrate(grid, t_start, lat0, lon0, alt0, 0.1, **kwargs)
    compile_s = time.perf_counter() - t0
    best, best_cpu = np.inf, np.inf
    for _ in range(args.repeat):
        t0, c0 = time.perf_counter(), time.process_time()
        pred = integrate(grid, t_start, lat0, lon0, alt0, args.hours, **kwargs)
        best = min(best, time.perf_counter() - t0)
        best_cpu = min(best_cpu, time.process_time() - c0)
    one = np.inf
    for _ in range(args.repeat):
        t0 = time.perf_counter()
        integrate(grid, t_start, 45.0, -140.0, 18000.0, args.hours)
        one = min(one, time.perf_counter() - t0)
    result = {
        "members": n,
        "hours": args.hours,
        "dt_s": 60.0,
        "load_s": round(load_s, 3),
        "compile_or_cache_load_s": round(compile_s, 3),
        "numba_s": round(best, 3),
        "numba_cpu_s": round(best_cpu, 3),
        "one_member_s": round(one, 4),
        "left_field": int(np.count_nonzero(pred.status == 2)),
        "gpu": "skipped (no GPU backend implemented)",
    }
    if not args.skip_numpy:
        t0, c0 = time.perf_counter(), time.process_time()
        lat_np, lon_np = numpy_rk4(grid, lat0, lon0, alt0, args.hours)
        numpy_s = time.perf_counter() - t0
        numpy_cpu_s = time.process_time() - c0
        result["numpy_s"] = round(numpy_s, 3)
        result["numpy_cpu_s"] = round(numpy_cpu_s, 3)
        result["ratio_numpy_over_numba"] = round(numpy_s / best, 1)
        result["ratio_cpu"] = round(numpy_cpu_s / best_cpu, 1)
        det = integrate(grid, t_start, 45.0, -140.0, 18000.0, args.hours)
        result["deterministic_end_km_numba_vs_numpy"] = round(
            float(haversine_m(det.lat_deg[0, -1], det.lon_deg[0, -1], lat_np[0], lon_np[0])) / 1e3, 2
        )
        # the same check on a copy of the field whose level heights are the mean profile
        # everywhere, where both schemes interpolate identically: they must agree closely
        flat = replace(
            grid,
            height_m=np.broadcast_to(
                grid.height_m.mean(axis=(2, 3), keepdims=True), grid.height_m.shape
            ).copy(),
        )
        det_flat = integrate(flat, t_start, 45.0, -140.0, 18000.0, args.hours)
        result["same_scheme_end_km_numba_vs_numpy"] = round(
            float(haversine_m(det_flat.lat_deg[0, -1], det_flat.lon_deg[0, -1], lat_np[0], lon_np[0])) / 1e3,
            3,
        )
    print(
        f"{n} members x {args.hours:g} h at 60 s on GFS 1 deg: numba {result['numba_s']} s "
        f"(cpu {result['numba_cpu_s']} s), one member {result['one_member_s'] * 1e3:.1f} ms"
        + (
            f", numpy {result['numpy_s']} s (cpu {result['numpy_cpu_s']}), x{result['ratio_cpu']} in cpu"
            if "numpy_s" in result
            else ""
        )
    )
    print(json.dumps(result))
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
