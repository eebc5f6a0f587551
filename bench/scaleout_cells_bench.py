"""Benchmark the scaled-out roles: tracker workers over cells, the 64-worker cell model, and a
continent of live tracks held in near real time. (The bus and executor groundwork:
bench/scaleout_bench.py.)

    .venv/bin/python bench/scaleout_cells_bench.py workers [--workers 1 2 4] [--aircraft 2000]
        [--seconds 120] [--interval 5]
    .venv/bin/python bench/scaleout_cells_bench.py model [--aircraft 50000] [--balloons 100]
        [--cell-deg 10 5 2.5] [--workers 64] [--halo-km 50]
    .venv/bin/python bench/scaleout_cells_bench.py live [--aircraft 50000] [--balloons 100]
        [--interval 10] [--seconds 60] [--store sqlite|postgres]
    .venv/bin/python bench/scaleout_cells_bench.py cells-live [--aircraft 5000] [--balloons 100]
        [--interval 10] [--workers 2] [--seconds 60]

Traffic (all parts): aircraft-like targets over North America (25-55 N, 125-65 W), 70 % of them
near 24 hub cities (Gaussian, 300 km), the rest en route, 200-250 m/s on random headings at
9-12 km, each reporting its position (GEODETIC, ICAO identity) every ``--interval`` s, reports
staggered; balloons anywhere in the box drifting 10-30 m/s at 18-25 km. Seeded (seed 1).

``workers``: a real ``nats-server -js`` (file storage, temp dir) and a throw-away PostgreSQL +
PostGIS database (127.0.0.1:5432). The observations are routed and published per cell first
(:class:`CellPublisher`, the ingest role; its rate is reported), then K tracker worker
*processes* (:func:`run_track_role`, ``[scale] max_cells`` = ceil(cells / K), so the cells are
spread) drain the backlog; observations/s = committed observations / (time from the workers'
start to the last commit), and again from the first commit (without process start-up).

``model``: no processes: the traffic of one second, cells of each ``--cell-deg``, cells spread
over ``--workers`` workers by load (longest-processing-time first), then: observations per
worker per second (max / mean), observations within ``--halo-km`` of an edge (copied to the
neighbour), tracks crossing a cell edge per second (hand-overs), and how many of those cross
between two workers.

``live``: the single-process pipeline (the ``all`` role: tracker, classifier, alerts, store,
bus) fed in real time, one step a second; each observation is stamped when it is handed in, and
its latency is the time until the ``tracks`` event of the step that took it is published.

``cells-live``: the same question through the scaled-out roles (:func:`cells_live`): ingest
publisher, tracker worker processes over cells committing to PostgreSQL, their per-cell
``tracks`` events on NATS, read by a live subscriber.
"""

from __future__ import annotations

import argparse
import contextlib
import json
import math
import multiprocessing
import os
import secrets
import shutil
import socket
import subprocess
import sys
import tempfile
import threading
import time
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import numpy as np

from stratowatch.model import MeasurementKind, Observation
from stratowatch.service.cells import CellGrid

LAT0, LAT1, LON0, LON1 = 25.0, 55.0, -125.0, -65.0
T0 = 1.7e9
R = 111_195.0


# --------------------------------------------------------------------------- traffic


class Traffic:
    def __init__(self, aircraft: int, balloons: int, seed: int = 1) -> None:
        rng = np.random.default_rng(seed)
        hubs_lat = rng.uniform(LAT0 + 3, LAT1 - 5, 24)
        hubs_lon = rng.uniform(LON0 + 5, LON1 - 5, 24)
        near = rng.random(aircraft) < 0.7
        h = rng.integers(0, 24, aircraft)
        lat = np.where(
            near, hubs_lat[h] + rng.normal(0, 300e3 / R, aircraft), rng.uniform(LAT0, LAT1, aircraft)
        )
        lon = np.where(
            near,
            hubs_lon[h] + rng.normal(0, 300e3 / R, aircraft) / np.cos(np.radians(np.clip(lat, LAT0, LAT1))),
            rng.uniform(LON0, LON1, aircraft),
        )
        speed = np.concatenate([rng.uniform(200, 250, aircraft), rng.uniform(10, 30, balloons)])
        heading = rng.uniform(0, 2 * np.pi, aircraft + balloons)
        self.lat = np.concatenate([np.clip(lat, LAT0, LAT1), rng.uniform(LAT0, LAT1, balloons)])
        self.lon = np.concatenate([np.clip(lon, LON0, LON1), rng.uniform(LON0, LON1, balloons)])
        self.alt = np.concatenate([rng.uniform(9000, 12000, aircraft), rng.uniform(18000, 25000, balloons)])
        self.ve, self.vn = speed * np.sin(heading), speed * np.cos(heading)
        self.n = aircraft + balloons
        self.aircraft = aircraft
        self.phase = rng.uniform(0, 1, self.n)  # report phase within the interval
        self.ids = [f"{i:06X}" for i in range(aircraft)] + [f"BAL{i:03d}" for i in range(balloons)]

    def at(self, t: float) -> tuple[np.ndarray, np.ndarray]:
        lat = self.lat + self.vn * t / R
        lon = self.lon + self.ve * t / (R * np.cos(np.radians(self.lat)))
        return lat, lon

    def reports(self, t0: float, t1: float, interval: float) -> list[Observation]:
        """The reports with times in [t0, t1) (each target every ``interval`` s at its phase)."""
        out: list[Observation] = []
        k0 = np.floor(t0 / interval - self.phase)
        for k in (k0, k0 + 1):
            t = (k + self.phase) * interval
            rows = np.flatnonzero((t >= t0) & (t < t1))
            if not rows.size:
                continue
            lat, lon = self.at(0.0)
            lat = lat[rows] + self.vn[rows] * t[rows] / R
            lon = lon[rows] + self.ve[rows] * t[rows] / (R * np.cos(np.radians(self.lat[rows])))
            for j, i in enumerate(rows.tolist()):
                balloon = i >= self.aircraft
                out.append(
                    Observation(
                        T0 + float(t[rows[j]]),
                        "gnss" if balloon else "adsb",
                        MeasurementKind.GEODETIC,
                        (float(lat[j]), float(lon[j]), float(self.alt[i])),
                        (30.0, 30.0, 50.0),
                        identity=self.ids[i],
                    )
                )
        out.sort(key=lambda o: o.time_s)
        return out


# --------------------------------------------------------------------------- model


def model(args: argparse.Namespace) -> dict[str, Any]:
    tr = Traffic(args.aircraft, args.balloons)
    lat, lon = tr.at(0.0)
    lat1, lon1 = tr.at(1.0)
    rate = np.where(np.arange(tr.n) < tr.aircraft, 1.0 / args.interval, 1.0 / args.balloon_interval)
    out: dict[str, Any] = {
        "targets": tr.n,
        "observations_per_s": float(rate.sum()),
        "report_interval_s": args.interval,
        "grids": [],
    }
    for size in args.cell_deg:
        grid = CellGrid(size)
        cells = grid.cell_of(lat, lon)
        moved = grid.cell_of(lat1, lon1)
        used, inverse = np.unique(cells, return_inverse=True)
        load = np.bincount(inverse, weights=rate)
        # cells to workers: longest processing time first
        owner = np.zeros(used.size, np.int64)
        work = np.zeros(args.workers)
        for c in np.argsort(-load):
            w = int(np.argmin(work))
            owner[c] = w
            work[w] += load[c]
        own = dict(zip(used.tolist(), owner.tolist(), strict=True))
        # distance to the cell's nearest edge (km), for the halo copies
        s0, w0 = np.floor((lat + 90) / size) * size - 90, np.floor((lon + 180) / size) * size - 180
        d_ns = np.minimum(lat - s0, s0 + size - lat) * R / 1e3
        d_ew = np.minimum(lon - w0, w0 + size - lon) * R * np.cos(np.radians(lat)) / 1e3
        near_edge = (d_ns < args.halo_km) | (d_ew < args.halo_km)
        crossing = cells != moved
        cross_worker = np.array(
            [
                own.get(int(a), -1) != own.get(int(b), -2)
                for a, b in zip(cells[crossing], moved[crossing], strict=True)
            ],
            dtype=bool,
        )
        out["grids"].append(
            {
                "cell_deg": size,
                "cells_with_traffic": int(used.size),
                "workers": args.workers,
                "obs_per_worker_s_max": round(float(work.max()), 1),
                "obs_per_worker_s_mean": round(float(work.mean()), 1),
                "imbalance_max_over_mean": round(float(work.max() / max(work.mean(), 1e-9)), 2),
                "busiest_cell_obs_s": round(float(load.max()), 1),
                "halo_copies_per_s": round(float((rate * near_edge).sum()), 1),
                "halo_fraction": round(float((rate * near_edge).sum() / rate.sum()), 3),
                "handovers_per_s": int(crossing.sum()),
                "handovers_between_workers_per_s": int(cross_worker.sum()),
            }
        )
    return out


# --------------------------------------------------------------------------- workers


def _free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return int(s.getsockname()[1])


class _Nats:
    def __init__(self) -> None:
        self.dir = Path(tempfile.mkdtemp(prefix="sw-bench-nats-"))
        self.port = _free_port()
        exe = shutil.which("nats-server") or "/usr/sbin/nats-server"
        log = self.dir / "log"
        self.proc = subprocess.Popen(
            [exe, "-js", "-a", "127.0.0.1", "-p", str(self.port), "-sd", str(self.dir), "-l", str(log)],
            stdout=subprocess.DEVNULL,
            stderr=subprocess.DEVNULL,
        )
        deadline = time.monotonic() + 15
        while not (log.exists() and "Server is ready" in log.read_text(errors="replace")):
            if time.monotonic() > deadline:
                raise RuntimeError("nats-server did not start")
            time.sleep(0.05)
        self.url = f"nats://127.0.0.1:{self.port}"

    def close(self) -> None:
        self.proc.kill()
        self.proc.wait()
        shutil.rmtree(self.dir, ignore_errors=True)


def _pg_database(server: str) -> Iterator[str]:
    import psycopg

    name = f"sw_bench_{secrets.token_hex(4)}"
    with psycopg.connect(server, autocommit=True) as admin:
        admin.execute(f"CREATE DATABASE {name}")
    info = psycopg.conninfo.conninfo_to_dict(server)
    user, host = info.get("user") or "postgres", info.get("host") or "127.0.0.1"
    url = f"postgresql://{user}@{host}:{info.get('port') or 5432}/{name}"
    try:
        yield url
    finally:
        with psycopg.connect(server, autocommit=True) as admin:
            admin.execute(f"DROP DATABASE IF EXISTS {name} WITH (FORCE)")


def _settings(store_url: str, bus_url: str, max_cells: int = 0) -> Any:
    from stratowatch.config import Settings

    return Settings(
        store_url=store_url,
        bus_url=bus_url,
        scale={
            "cell_size_deg": 10.0,
            "lease_s": 10.0,
            "halo_km": 50.0,
            "max_cells": max_cells,
            "fetch_batch": 64,
        },
        geofences={"sample_sites": False},
        predictions={"enabled": False},
        sensors={"sensor": [{"id": "adsb", "kind": "adsb"}, {"id": "gnss", "kind": "radiosonde"}]},
    )


def _worker_main(store_url: str, bus_url: str, max_cells: int, worker_id: str, stop: Any) -> None:
    import logging
    import threading as th

    from stratowatch.service.cellworker import run_track_role
    from stratowatch.service.roles import tune_gc

    logging.basicConfig(level=logging.WARNING)
    tune_gc()  # as `serve --role track` does
    ev = th.Event()

    def watch() -> None:
        stop.wait()
        ev.set()

    th.Thread(target=watch, daemon=True).start()
    run_track_role(_settings(store_url, bus_url, max_cells), ev, worker_id=worker_id)


def workers(args: argparse.Namespace) -> dict[str, Any]:
    import psycopg

    from stratowatch.service.bus_nats import NatsBus, NatsSettings
    from stratowatch.service.cellworker import CellPublisher
    from stratowatch.store import open_store

    tr = Traffic(args.aircraft, 0)
    obs = [o for k in range(args.seconds) for o in tr.reports(float(k), k + 1.0, args.interval)]
    grid = CellGrid(10.0)
    results: list[dict[str, Any]] = []
    ctx = multiprocessing.get_context("spawn")
    for k in args.workers:
        nats = _Nats()
        gen = _pg_database(args.pg)
        url = next(gen)
        try:
            store = open_store(url)
            settings = _settings(url, nats.url)
            bus = NatsBus(NatsSettings(url=nats.url, name="bench-ingest"))
            pub = CellPublisher(bus, grid, halo_km=settings.scale.halo_km)
            started = time.perf_counter()
            acks = []
            step = 1.0
            cells: set[int] = set()
            t = 0.0
            i = 0
            while i < len(obs):  # one publish per second of data, as the ingest role does
                j = i
                while j < len(obs) and obs[j].time_s < T0 + t + step:
                    j += 1
                r = pub.publish(obs[i:j])
                acks.extend(r.acks)
                i, t = j, t + step
            for a in acks:
                a.result(60)
            publish_s = time.perf_counter() - started
            cells = set(bus.cells_with_messages())
            bus.close()
            max_cells = math.ceil(len(cells) / k)
            stop = ctx.Event()
            t_start = time.perf_counter()
            procs = [
                ctx.Process(target=_worker_main, args=(url, nats.url, max_cells, f"bench-w{n}", stop))
                for n in range(k)
            ]
            for p in procs:
                p.start()
            first = None
            total = len(obs)
            with psycopg.connect(url, autocommit=True) as conn:
                deadline = time.monotonic() + args.timeout
                while time.monotonic() < deadline:
                    n = int(conn.execute("SELECT COUNT(*) FROM observations").fetchone()[0])
                    if n and first is None:
                        first = (time.perf_counter(), n)
                    if n >= total:
                        break
                    time.sleep(0.05)
                done = time.perf_counter()
                n = int(conn.execute("SELECT COUNT(*) FROM observations").fetchone()[0])
                tracks = int(conn.execute("SELECT COUNT(*) FROM tracks WHERE status <> 3").fetchone()[0])
            stop.set()
            for p in procs:
                p.join(30)
                if p.is_alive():
                    p.kill()
            store.close()
            row = {
                "workers": k,
                "observations": total,
                "stored": n,
                "cells": len(cells),
                "cells_per_worker": max_cells,
                "publish_obs_per_s": round(total / publish_s),
                "drain_s": round(done - t_start, 2),
                "obs_per_s": round(n / (done - t_start)),
                "obs_per_s_after_first_commit": round((n - first[1]) / max(done - first[0], 1e-9))
                if first
                else None,
                "live_tracks": tracks,
            }
            print(json.dumps(row), flush=True)
            results.append(row)
        finally:
            with contextlib.suppress(StopIteration):
                next(gen)
            nats.close()
    return {"cpus": os.cpu_count(), "runs": results}


# --------------------------------------------------------------------------- live


def live(args: argparse.Namespace) -> dict[str, Any]:
    from stratowatch.config import Settings
    from stratowatch.service.bus import InProcessBus
    from stratowatch.service.pipeline import Pipeline
    from stratowatch.store import open_store

    tmp = Path(tempfile.mkdtemp(prefix="sw-bench-live-"))
    gen = None
    if args.store == "postgres":
        gen = _pg_database(args.pg)
        url = next(gen)
    else:
        url = f"sqlite:///{tmp / 'live.db'}"
    settings = Settings(
        store_url=url,
        geofences={"sample_sites": False},
        predictions={"enabled": False},
        pipeline={"classify_with_winds": False},
        sensors={"sensor": [{"id": "adsb", "kind": "adsb"}, {"id": "gnss", "kind": "radiosonde"}]},
    )
    from stratowatch.service.roles import tune_gc

    tune_gc()  # as `serve` does
    tr = Traffic(args.aircraft, args.balloons)
    store = open_store(url)
    bus = InProcessBus()
    pipeline = Pipeline(settings, store, bus, winds=None, geofences=[])
    sub = bus.subscribe(["tracks"], maxsize=1000)
    latencies: list[np.ndarray] = []
    steps: list[float] = []
    lag: list[float] = []
    tracks_seen = 0
    wall0 = time.perf_counter()
    handed: list[tuple[float, list[Observation]]] = []
    lock = threading.Lock()
    stop = threading.Event()

    def feeder() -> None:  # hands in each 100 ms of reports at its wall time
        k = 0
        while not stop.is_set() and k < args.seconds * 10:
            due = wall0 + 0.1 * k
            delay = due - time.perf_counter()
            if delay > 0:
                time.sleep(delay)
            chunk = tr.reports(0.1 * k, 0.1 * (k + 1), args.interval)
            with lock:
                handed.append((time.perf_counter(), chunk))
            k += 1

    th = threading.Thread(target=feeder, daemon=True)
    th.start()
    next_step = wall0 + 1.0
    while th.is_alive() or handed:
        delay = next_step - time.perf_counter()
        if delay > 0:
            time.sleep(delay)
        next_step += 1.0
        with lock:
            batch, handed[:] = list(handed), []
        obs = [o for _t, c in batch for o in c]
        stamps = np.concatenate([np.full(len(c), t) for t, c in batch]) if batch else np.empty(0)
        if not obs:
            continue
        s0 = time.perf_counter()
        pipeline.process(max(o.time_s for o in obs), obs)
        s1 = time.perf_counter()
        ev = sub.get_nowait()
        published = s1
        while ev is not None:
            tracks_seen = len(ev[1].get("tracks") or ())
            ev = sub.get_nowait()
        steps.append(s1 - s0)
        lag.append(s1 - next_step + 1.0)
        latencies.append(published - stamps)
    stop.set()
    pipeline.close()
    store.close()
    if gen is not None:
        with contextlib.suppress(StopIteration):
            next(gen)
    shutil.rmtree(tmp, ignore_errors=True)
    lat = np.concatenate(latencies) if latencies else np.empty(0)
    warm = np.concatenate(latencies[len(latencies) // 3 :]) if latencies else np.empty(0)
    return {
        "targets": tr.n,
        "observations_per_s": round(tr.n / args.interval),
        "seconds": args.seconds,
        "store": args.store,
        "live_tracks_at_end": tracks_seen,
        "step_s_p50": round(float(np.median(steps)), 3),
        "step_s_max": round(float(np.max(steps)), 3),
        "latency_s_p50": round(float(np.percentile(lat, 50)), 3),
        "latency_s_p99": round(float(np.percentile(lat, 99)), 3),
        "latency_s_p50_last_two_thirds": round(float(np.percentile(warm, 50)), 3),
        "latency_s_p99_last_two_thirds": round(float(np.percentile(warm, 99)), 3),
    }


# --------------------------------------------------------------------------- live over cells


def cells_live(args: argparse.Namespace) -> dict[str, Any]:
    """The scaled-out path in real time: ingest publisher -> SW_CELLS -> K tracker worker
    processes (PostgreSQL) -> their ``tracks`` events on NATS. Each second of reports is
    published at its wall time; a live subscriber takes, from every event, the tracks a new
    measurement updated, and their latency is the event's arrival minus the publication of the
    second of reports that held that measurement."""
    from stratowatch.service.bus_nats import NatsBus, NatsSettings
    from stratowatch.service.cellworker import CellPublisher

    tr = Traffic(args.aircraft, args.balloons)
    grid = CellGrid(10.0)
    nats = _Nats()
    gen = _pg_database(args.pg)
    url = next(gen)
    ctx = multiprocessing.get_context("spawn")
    stop = ctx.Event()
    procs: list[Any] = []
    try:
        cells = np.unique(grid.cell_of(*tr.at(0.0))).size
        max_cells = math.ceil(cells / args.workers) + 1
        procs = [
            ctx.Process(target=_worker_main, args=(url, nats.url, max_cells, f"bench-w{n}", stop))
            for n in range(args.workers)
        ]
        for p in procs:
            p.start()
        bus = NatsBus(NatsSettings(url=nats.url, name="bench-ingest"))
        listener = NatsBus(NatsSettings(url=nats.url, name="bench-listener"))
        sub = listener.subscribe(["tracks"], maxsize=100_000)
        pub = CellPublisher(bus, grid, halo_km=50.0)
        published: dict[int, float] = {}  # second of data -> wall time its reports were published
        latencies: list[float] = []
        seen: dict[int, float] = {}
        lock = threading.Lock()
        done = threading.Event()

        def listen() -> None:
            while not done.is_set() or len(sub):
                item = sub.get_nowait()
                if item is None:
                    time.sleep(0.01)
                    continue
                now = time.perf_counter()
                for d in item[1].get("tracks") or ():
                    u = float(d["last_update_s"])
                    if u <= seen.get(d["track_id"], -1.0):
                        continue
                    seen[d["track_id"]] = u
                    with lock:
                        at = published.get(int(u - T0))
                    if at is not None:
                        latencies.append(now - at)

        th = threading.Thread(target=listen, daemon=True)
        th.start()
        time.sleep(3.0)  # the workers start (imports, connections)
        wall0 = time.perf_counter()
        for k in range(args.seconds):
            delay = wall0 + k + 1.0 - time.perf_counter()
            if delay > 0:
                time.sleep(delay)
            r = pub.publish(tr.reports(float(k), k + 1.0, args.interval))
            for a in r.acks:
                a.result(30)
            with lock:
                published[k] = time.perf_counter()
        time.sleep(args.settle)
        done.set()
        th.join(30)
        lat = np.asarray(latencies)
        warm = lat[len(lat) // 3 :]
        sub.close()
        bus.close()
        listener.close()
        return {
            "cpus": os.cpu_count(),
            "targets": tr.n,
            "observations_per_s": round(tr.n / args.interval),
            "workers": args.workers,
            "cells": int(cells),
            "seconds": args.seconds,
            "tracks_seen": len(seen),
            "updates_measured": int(lat.size),
            "latency_s_p50": round(float(np.percentile(lat, 50)), 3) if lat.size else None,
            "latency_s_p99": round(float(np.percentile(lat, 99)), 3) if lat.size else None,
            "latency_s_p50_last_two_thirds": round(float(np.percentile(warm, 50)), 3) if warm.size else None,
            "latency_s_p99_last_two_thirds": round(float(np.percentile(warm, 99)), 3) if warm.size else None,
        }
    finally:
        stop.set()
        for p in procs:
            p.join(30)
            if p.is_alive():
                p.kill()
        with contextlib.suppress(StopIteration):
            next(gen)
        nats.close()


PG_SERVER = os.environ.get("STRATOWATCH_TEST_PG_URL", "postgresql://postgres@127.0.0.1:5432/postgres")


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    sub = ap.add_subparsers(dest="part", required=True)
    w = sub.add_parser("workers")
    w.add_argument("--workers", type=int, nargs="+", default=[1, 2, 4])
    w.add_argument("--aircraft", type=int, default=2000)
    w.add_argument("--seconds", type=int, default=120)
    w.add_argument("--interval", type=float, default=5.0)
    w.add_argument("--timeout", type=float, default=600.0)
    w.add_argument("--pg", default=PG_SERVER, help="PostgreSQL maintenance URL")
    m = sub.add_parser("model")
    m.add_argument("--aircraft", type=int, default=50_000)
    m.add_argument("--balloons", type=int, default=100)
    m.add_argument("--interval", type=float, default=1.0, help="aircraft report interval, s")
    m.add_argument("--balloon-interval", type=float, default=10.0)
    m.add_argument("--cell-deg", type=float, nargs="+", default=[10.0, 5.0, 2.5])
    m.add_argument("--workers", type=int, default=64)
    m.add_argument("--halo-km", type=float, default=50.0)
    v = sub.add_parser("live")
    v.add_argument("--aircraft", type=int, default=50_000)
    v.add_argument("--balloons", type=int, default=100)
    v.add_argument("--interval", type=float, default=10.0)
    v.add_argument("--seconds", type=int, default=60)
    v.add_argument("--store", choices=["sqlite", "postgres"], default="sqlite")
    v.add_argument("--pg", default=PG_SERVER, help="PostgreSQL maintenance URL")
    c = sub.add_parser("cells-live")
    c.add_argument("--aircraft", type=int, default=5_000)
    c.add_argument("--balloons", type=int, default=100)
    c.add_argument("--interval", type=float, default=10.0)
    c.add_argument("--workers", type=int, default=2)
    c.add_argument("--seconds", type=int, default=60)
    c.add_argument("--settle", type=float, default=10.0, help="s to wait for the last events")
    c.add_argument("--pg", default=PG_SERVER, help="PostgreSQL maintenance URL")
    args = ap.parse_args()
    out = {"workers": workers, "model": model, "live": live, "cells-live": cells_live}[args.part](args)
    print(json.dumps(out, indent=1))


if __name__ == "__main__":
    sys.path.insert(0, str(Path(__file__).resolve().parents[1] / "src"))
    main()
