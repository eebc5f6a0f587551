"""Alert engine speed: 10,000 tracks against 200 geofences per step.

    .venv/bin/python bench/alerts_bench.py [--tracks 10000] [--steps 10]

Geofences: 120 circles (20-80 km), 60 star-shaped polygons (16-24 vertices), 20 lines (the sample
49th-parallel border and 19 random 30-vertex polylines), spread over North America. Tracks move
about 10-250 m/s for 10 s per step; 2 % are unidentified balloons. Reported: the median and
worst milliseconds of (a) the core array tests (inside + crossings) and (b) a full
``AlertEngine.evaluate`` step (column extraction from Track objects, rules, de-duplication,
incidents), after one warm-up step (the first step creates the incidents of the tracks that
start inside geofences).
"""

from __future__ import annotations

import argparse
import time

import numpy as np

from stratowatch.alerts.engine import AlertEngine, RulesConfig
from stratowatch.alerts.geofences import GeofenceIndex, load_border_sides, load_geofences, sample_sites_path
from stratowatch.model import Classification, Geofence, ObjectClass, Track, TrackStatus


def _geofences(rng: np.random.Generator) -> list[Geofence]:
    out: list[Geofence] = []
    for k in range(120):
        lat, lon = rng.uniform(28, 65), rng.uniform(-150, -60)
        out.append(
            Geofence(f"c{k}", f"Circle {k}", "circle", ((lat, lon),), radius_m=float(rng.uniform(20e3, 80e3)))
        )
    for k in range(60):
        lat, lon = rng.uniform(28, 65), rng.uniform(-150, -60)
        n = int(rng.integers(16, 25))
        ang = np.sort(rng.uniform(0, 2 * np.pi, n))
        r = rng.uniform(0.3, 1.5, n)
        ring = tuple(
            (float(lat + r[i] * np.sin(ang[i])), float(lon + 1.5 * r[i] * np.cos(ang[i]))) for i in range(n)
        )
        out.append(Geofence(f"p{k}", f"Polygon {k}", "polygon", ring, max_alt_m=25_000.0))
    border = [g for g in load_geofences(sample_sites_path()) if g.kind == "line"]
    out.extend(border)
    for k in range(20 - len(border)):
        lat, lon = rng.uniform(28, 65), rng.uniform(-150, -60)
        pts = np.cumsum(rng.normal(0, 0.4, (30, 2)), axis=0) + np.array([lat, lon])
        out.append(Geofence(f"l{k}", f"Line {k}", "line", tuple((float(a), float(b)) for a, b in pts)))
    return out


def _tracks(
    ids: np.ndarray, lat: np.ndarray, lon: np.ndarray, alt: np.ndarray, t: float, balloon: np.ndarray
) -> list[Track]:
    bal = Classification(ObjectClass.BALLOON, 0.9, {"balloon": 0.9}, ("slow, high",))
    air = Classification(ObjectClass.AIRCRAFT, 0.95, {"aircraft": 0.95}, ("fast",))
    return [
        Track(
            track_id=int(ids[i]),
            time_s=t,
            status=TrackStatus.CONFIRMED,
            lat_deg=float(lat[i]),
            lon_deg=float(lon[i]),
            alt_m=float(alt[i]),
            velocity_enu_mps=(0.0, 0.0, 0.0),
            position_sigma_m=(100.0, 100.0, 100.0),
            model_probabilities={"cv": 1.0},
            identities=() if balloon[i] else (f"icao:{int(ids[i]):06X}",),
            sensors=("s",),
            first_time_s=0.0,
            last_update_s=t,
            n_updates=5,
            classification=bal if balloon[i] else air,
        )
        for i in range(ids.size)
    ]


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--tracks", type=int, default=10_000)
    ap.add_argument("--steps", type=int, default=10)
    ap.add_argument("--dt", type=float, default=10.0)
    args = ap.parse_args()
    rng = np.random.default_rng(1)
    fences = _geofences(rng)
    n = args.tracks
    ids = np.arange(1, n + 1)
    lat, lon = rng.uniform(25, 70, n), rng.uniform(-165, -55, n)
    alt = rng.uniform(1_000, 20_000, n)
    speed = rng.uniform(10, 250, n)
    heading = rng.uniform(0, 2 * np.pi, n)
    balloon = rng.random(n) < 0.02
    dlat = speed * np.cos(heading) * args.dt / 111_000.0
    dlon = speed * np.sin(heading) * args.dt / (111_000.0 * np.cos(np.radians(lat)))

    steps = []
    for k in range(args.steps + 1):
        steps.append(
            (
                lat + k * dlat,
                lon + k * dlon,
                _tracks(ids, lat + k * dlat, lon + k * dlon, alt, k * args.dt, balloon),
            )
        )

    t0 = time.perf_counter()
    index = GeofenceIndex(fences)
    build_ms = (time.perf_counter() - t0) * 1e3
    core = []
    for k in range(1, len(steps)):
        t0 = time.perf_counter()
        index.inside(steps[k][0], steps[k][1], alt)
        index.crossings(steps[k - 1][0], steps[k - 1][1], steps[k][0], steps[k][1], alt)
        core.append((time.perf_counter() - t0) * 1e3)

    engine = AlertEngine(fences, RulesConfig(border_sides=load_border_sides(sample_sites_path())))
    first = engine.evaluate(0.0, steps[0][2])
    full, n_alerts = [], []
    for k in range(1, len(steps)):
        t0 = time.perf_counter()
        alerts = engine.evaluate(k * args.dt, steps[k][2])
        full.append((time.perf_counter() - t0) * 1e3)
        n_alerts.append(len(alerts))
    kinds = {g.kind: sum(x.kind == g.kind for x in fences) for g in fences}
    print(f"{n} tracks x {len(fences)} geofences {kinds}; index build {build_ms:.0f} ms")
    print(f"core inside+crossings per step: median {np.median(core):.1f} ms, max {max(core):.1f} ms")
    print(
        f"AlertEngine.evaluate per step:  median {np.median(full):.1f} ms, max {max(full):.1f} ms "
        f"(first step {len(first)} alerts, then {int(np.mean(n_alerts))} alerts/step, "
        f"{len(engine.book.incidents())} incidents)"
    )


if __name__ == "__main__":
    main()
