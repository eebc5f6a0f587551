#!/usr/bin/env python3
"""Store benchmark: observations/s committed in batches of 1,000, SQLite and PostgreSQL.

Each batch is one ``write_observations`` call (one transaction, committed before it returns, as
the live service does). Times include the row conversion and the commit. Also measured: track
states/s (upsert of the current state plus a history row), and the latency of a box query over
the observations (R*Tree in SQLite, GiST in PostGIS).

    python bench/store_bench.py                       # SQLite (FULL and NORMAL) + local PostgreSQL
    python bench/store_bench.py --batches 200 --pg postgresql://postgres@127.0.0.1:5432/postgres
    python bench/store_bench.py --no-pg

PostgreSQL: a database ``sw_bench_<random>`` is created on the --pg server and dropped afterwards.
One JSON line per backend, then a Markdown table. Never run as a test: these are measurements.
"""

from __future__ import annotations

import argparse
import json
import secrets
import statistics
import tempfile
import time
from pathlib import Path
from typing import Any

import numpy as np

from stratowatch.model import Classification, MeasurementKind, ObjectClass, Observation, Track, TrackStatus
from stratowatch.store import open_store


def make_observations(n: int, seed: int = 1) -> list[Observation]:
    rng = np.random.default_rng(seed)
    lat = rng.uniform(30.0, 70.0, n)
    lon = rng.uniform(-170.0, -60.0, n)
    alt = rng.uniform(0.0, 30_000.0, n)
    return [
        Observation(
            1.7e9 + i * 0.01,
            f"feed-{i % 7}",
            MeasurementKind.GEODETIC,
            (float(lat[i]), float(lon[i]), float(alt[i])),
            (50.0, 80.0),
            identity=f"icao:{i % 5000:06X}",
        )
        for i in range(n)
    ]


def make_tracks(n_tracks: int, t: float) -> list[Track]:
    cls = Classification(ObjectClass.BALLOON, 0.9, {"balloon": 0.9, "aircraft": 0.1}, ("drifts",))
    return [
        Track(i, t, TrackStatus.CONFIRMED, 45.0 + i * 1e-3, -110.0, 18_000.0, (3.0, 4.0, 0.0),
              (40.0, 40.0, 60.0), {"balloon_drift": 0.9}, (f"aprs:X-{i}",), ("sonde",), 0.0, t, 10, cls)
        for i in range(n_tracks)
    ]  # fmt: skip


def run(url: str, label: str, batches: int, batch_size: int) -> dict[str, Any]:
    observations = make_observations(batches * batch_size)
    store = open_store(url)
    try:
        seconds = []
        for b in range(batches):
            chunk = observations[b * batch_size : (b + 1) * batch_size]
            t0 = time.perf_counter()
            store.write_observations(chunk)
            seconds.append(time.perf_counter() - t0)
        total = sum(seconds)
        n_tracks, steps = 500, 20
        t0 = time.perf_counter()
        for k in range(steps):
            store.write_track_states(make_tracks(n_tracks, 1.7e9 + 10.0 * k))
        track_s = time.perf_counter() - t0
        box = (44.0, -112.0, 46.0, -108.0)
        query_ms = []
        for _ in range(20):
            t0 = time.perf_counter()
            found = store.observations(bbox=box, limit=None)
            query_ms.append((time.perf_counter() - t0) * 1e3)
        assert store.count() == batches * batch_size
    finally:
        store.close()
    return {
        "backend": label,
        "observations": batches * batch_size,
        "batch_size": batch_size,
        "obs_per_s": round(batches * batch_size / total),
        "batch_ms_median": round(statistics.median(seconds) * 1e3, 2),
        "batch_ms_p95": round(float(np.percentile(seconds, 95)) * 1e3, 2),
        "track_states_per_s": round(n_tracks * steps / track_s),
        "box_query_rows": len(found),
        "box_query_ms_median": round(statistics.median(query_ms), 2),
    }


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--batches", type=int, default=100)
    ap.add_argument("--batch-size", type=int, default=1000)
    ap.add_argument(
        "--pg", default="postgresql://postgres@127.0.0.1:5432/postgres", help="server to bench on"
    )
    ap.add_argument("--no-pg", action="store_true")
    args = ap.parse_args()
    results = []
    with tempfile.TemporaryDirectory() as tmp:
        for sync in ("full", "normal"):
            url = f"sqlite:///{Path(tmp) / f'bench-{sync}.db'}?synchronous={sync}"
            results.append(run(url, f"sqlite synchronous={sync}", args.batches, args.batch_size))
            print(json.dumps(results[-1]), flush=True)
    if not args.no_pg:
        import psycopg

        from stratowatch.store.postgres import _redacted

        name = f"sw_bench_{secrets.token_hex(4)}"
        with psycopg.connect(args.pg, autocommit=True) as admin:
            admin.execute(f"CREATE DATABASE {name}")
        try:
            info = psycopg.conninfo.conninfo_to_dict(args.pg)
            user = str(info.get("user", "postgres")) + (
                f":{info['password']}" if info.get("password") else ""
            )
            url = f"postgresql://{user}@{info.get('host', '127.0.0.1')}:{info.get('port', 5432)}/{name}"
            results.append(run(url, f"postgresql ({_redacted(url)})", args.batches, args.batch_size))
            print(json.dumps(results[-1]), flush=True)
        finally:
            with psycopg.connect(args.pg, autocommit=True) as admin:
                admin.execute(f"DROP DATABASE IF EXISTS {name} WITH (FORCE)")
    print()
    print(
        "| backend | observations | obs/s (batches of 1,000) | batch median ms | p95 ms | track states/s"
        " | box query ms |"
    )
    print("|---|---:|---:|---:|---:|---:|---:|")
    for r in results:
        print(
            f"| {r['backend']} | {r['observations']} | {r['obs_per_s']} | {r['batch_ms_median']} | "
            f"{r['batch_ms_p95']} | {r['track_states_per_s']} | "
            f"{r['box_query_ms_median']} ({r['box_query_rows']} rows) |"
        )


if __name__ == "__main__":
    main()
