#!/usr/bin/env python3
"""End-to-end pipeline throughput: a replayed ADS-B feed -> ingest -> pipeline -> store.

Target (issue): 5,000 observations/s sustained from a replayed feed into the store with the
tracker running, on one core, with bounded memory.

The feed is synthetic SBS (port-30003 text, as dump1090 sends it; no real SBS recording of that
density is shipped): ``--aircraft`` aircraft over the Prairies reporting positions at
``--rate`` Hz each (2,500 x 2 Hz = 5,000 positions/s), plus an identification message
(callsign) every 10 s. Each second of feed is parsed by the SBS reader and handed to
``Pipeline.process`` as one step: commit to SQLite (``synchronous=full`` unless told otherwise),
tracker step, classification (with the wind match on the analytic field), alert rules, track
states to the store, bus publication. Predictions are off (airliners are not predicted anyway).

The process is pinned to one CPU (sched_setaffinity) with numba and BLAS limited to one thread.
Reported: observations per wall second over the whole run, the slowest 10 s window (sustained
means every 10 s of feed is processed in under 10 s), per-step times, and the resident memory
after each quarter of the run (bounded: it must not grow with the number of observations).

    .venv/bin/python bench/pipeline_bench.py                     # 2,500 aircraft x 2 Hz, 60 s of feed
    .venv/bin/python bench/pipeline_bench.py --seconds 20        # shorter
    .venv/bin/python bench/pipeline_bench.py --json bench/out/pipeline.json

Never run as a test: these are measurements.
"""

from __future__ import annotations

import os

os.environ.setdefault("NUMBA_NUM_THREADS", "1")
os.environ.setdefault("OMP_NUM_THREADS", "1")
os.environ.setdefault("OPENBLAS_NUM_THREADS", "1")
os.environ.setdefault("MKL_NUM_THREADS", "1")

import argparse
import datetime as dt
import io
import json
import math
import platform
import sys
import tempfile
import time
from pathlib import Path

import numpy as np

START_S = dt.datetime(2023, 2, 1, 18, 0, tzinfo=dt.UTC).timestamp()


def rss_mb() -> float:
    with open("/proc/self/statm") as f:
        return int(f.read().split()[1]) * os.sysconf("SC_PAGE_SIZE") / 1e6


def feed_seconds(n_aircraft: int, rate_hz: float, seconds: int, seed: int) -> list[bytes]:
    """One SBS text chunk per second of feed."""
    rng = np.random.default_rng(seed)
    lat0 = rng.uniform(45.0, 55.0, n_aircraft)
    lon0 = rng.uniform(-120.0, -95.0, n_aircraft)
    heading = rng.uniform(0.0, 2 * np.pi, n_aircraft)
    speed = rng.uniform(180.0, 250.0, n_aircraft)
    alt_ft = rng.integers(200, 410, n_aircraft) * 100
    icao = [f"{0xA00000 + i:06X}" for i in range(n_aircraft)]
    per_s = max(1, round(rate_hz))
    phase = rng.uniform(0.0, 1.0 / per_s, n_aircraft)
    chunks = []
    day = dt.datetime.fromtimestamp(START_S, dt.UTC).strftime("%Y/%m/%d")
    for s in range(seconds):
        lines = []
        for k in range(per_s):
            t = s + k / per_s + phase
            north = speed * np.cos(heading) * t
            east = speed * np.sin(heading) * t
            lat = lat0 + north / 111_320.0
            lon = lon0 + east / (111_320.0 * np.cos(np.radians(lat0)))
            for i in range(n_aircraft):  # generating the input, not the measured code
                ts = dt.datetime.fromtimestamp(START_S + t[i], dt.UTC).strftime("%H:%M:%S.%f")[:-3]
                lines.append(
                    f"MSG,3,1,1,{icao[i]},1,{day},{ts},{day},{ts},,{alt_ft[i]},,,{lat[i]:.5f},{lon[i]:.5f},,,0,0,0,0"
                )
        if s % 10 == 0:
            ts = dt.datetime.fromtimestamp(START_S + s, dt.UTC).strftime("%H:%M:%S.%f")[:-3]
            for i in range(n_aircraft):
                lines.append(f"MSG,1,1,1,{icao[i]},1,{day},{ts},{day},{ts},FLT{i:05d},,,,,,,,0,0,0,0")
        chunks.append(("\r\n".join(lines) + "\r\n").encode())
    return chunks


def main() -> int:
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--aircraft", type=int, default=2500)
    ap.add_argument("--rate", type=float, default=2.0, help="positions per second per aircraft")
    ap.add_argument("--seconds", type=int, default=60, help="seconds of feed")
    ap.add_argument("--seed", type=int, default=1)
    ap.add_argument("--synchronous", default="full", choices=("full", "normal"))
    ap.add_argument("--no-winds", action="store_true", help="classify without the wind match")
    ap.add_argument("--cpu", type=int, default=None, help="CPU to pin to (default: the first allowed)")
    ap.add_argument("--json", type=Path, help="write the results here")
    args = ap.parse_args()

    allowed = sorted(os.sched_getaffinity(0))
    cpu = args.cpu if args.cpu is not None else allowed[0]
    os.sched_setaffinity(0, {cpu})

    from stratowatch.config import load_settings
    from stratowatch.ingest.base import CollectingSink, ReadContext
    from stratowatch.ingest.sbs import SbsReader
    from stratowatch.service.pipeline import Pipeline
    from stratowatch.store import open_store
    from stratowatch.weather import analytic_field

    print(f"generating {args.seconds} s of SBS feed for {args.aircraft} aircraft at {args.rate:g} Hz ...")
    chunks = feed_seconds(args.aircraft, args.rate, args.seconds, args.seed)
    feed_mb = sum(len(c) for c in chunks) / 1e6

    tmp = Path(tempfile.mkdtemp(prefix="sw-pipeline-bench-"))
    url = f"sqlite:///{tmp / 'bench.db'}?synchronous={args.synchronous}"
    settings = load_settings(
        None,
        env={},
        store_url=url,
        predictions={"enabled": False},
        geofences={"sample_sites": True},
        pipeline={"classify_with_winds": not args.no_winds, "state_every_steps": 10},
    )
    store = open_store(url)
    winds = None if args.no_winds else analytic_field(t0_s=START_S - 6 * 3600.0, hours=24.0)
    pipe = Pipeline(settings, store, winds=winds)
    reader = SbsReader()
    ctx = ReadContext("bench-feed", sensor_id="adsb-bench")

    # warm-up: compile the numba kernels on a separate small pipeline (not timed)
    warm_store = open_store(f"sqlite:///{tmp / 'warm.db'}")
    warm = Pipeline(settings, warm_store, winds=winds)
    for chunk in chunks[:3]:
        sink = CollectingSink()
        reader.read(io.BytesIO(chunk), ctx, sink)
        warm.process(max(o.time_s for o in sink.observations), sink.observations)
    warm.close()
    warm_store.close()
    reader = SbsReader()

    step_s: list[float] = []
    step_obs: list[int] = []
    rss: list[float] = []
    total_obs = 0
    t_start = time.perf_counter()
    for chunk in chunks:
        t0 = time.perf_counter()
        sink = CollectingSink()
        reader.read(io.BytesIO(chunk), ctx, sink)
        obs = sink.observations
        pipe.process(START_S + len(step_s) + 1.0, obs)
        step_s.append(time.perf_counter() - t0)
        step_obs.append(len(obs))
        total_obs += len(obs)
        rss.append(rss_mb())
    wall = time.perf_counter() - t_start
    pipe.close()
    committed = store.count("observations")
    n_tracks = store.count("tracks")
    store.close()

    steps = np.asarray(step_s)
    window = 10
    windows = np.convolve(steps, np.ones(window), mode="valid") if steps.size >= window else steps
    quarters = [rss[max(0, math.ceil(len(rss) * q) - 1)] for q in (0.25, 0.5, 0.75, 1.0)]
    result = {
        "aircraft": args.aircraft,
        "rate_hz": args.rate,
        "feed_seconds": args.seconds,
        "feed_mb": round(feed_mb, 1),
        "observations": total_obs,
        "committed": committed,
        "tracks_in_store": n_tracks,
        "wall_s": round(wall, 2),
        "observations_per_s": round(total_obs / wall),
        "feed_realtime_factor": round(args.seconds / wall, 2),
        "step_ms_median": round(1000 * float(np.median(steps)), 1),
        "step_ms_p95": round(1000 * float(np.percentile(steps, 95)), 1),
        "step_ms_max": round(1000 * float(steps.max()), 1),
        "slowest_10s_window_s": round(float(windows.max()), 2),
        "sustained": bool(windows.max() < window),
        "rss_mb_quarters": [round(x) for x in quarters],
        "step_ms": [round(1000 * x) for x in step_s],
        "synchronous": args.synchronous,
        "winds": not args.no_winds,
        "cpu": cpu,
        "python": platform.python_version(),
        "machine": platform.processor() or platform.machine(),
    }
    print(json.dumps(result))
    print(
        f"\n{total_obs:,} observations ({feed_mb:.0f} MB SBS) in {wall:.1f} s on one core: "
        f"{total_obs / wall:,.0f} observations/s ({args.seconds / wall:.2f}x real time); "
        f"steps median {result['step_ms_median']} ms, p95 {result['step_ms_p95']} ms, "
        f"slowest 10 s of feed took {windows.max():.2f} s -> "
        f"{'sustained' if result['sustained'] else 'NOT sustained'}; "
        f"RSS by quarter {result['rss_mb_quarters']} MB; committed {committed:,}"
    )
    if args.json:
        args.json.parent.mkdir(parents=True, exist_ok=True)
        args.json.write_text(json.dumps(result, indent=2) + "\n", encoding="utf-8")
    return 0 if committed == total_obs else 1


if __name__ == "__main__":
    sys.exit(main())
