#!/usr/bin/env python3
"""API latency under load: ``GET /api/v1/tracks`` at a fixed request rate while ingest runs.

The server process is ``stratowatch serve``'s own loop (:func:`stratowatch.service.app.run`: a
SQLite store, the live :class:`~stratowatch.service.pipeline.Pipeline` with tracker, classifier
and alerts — predictions off unless ``--predictions`` — and the API on uvicorn) with a feed that
sends the pipeline one scan per second of ``--targets`` moving objects (half ADS-B aircraft with
identities, half radar-only balloons at 18-20 km), so about 1,000 tracks are live and their
states are written every second, steps running in a worker thread as with live sources.

The load generator (this process) sends requests open-loop at ``--rate`` per second for
``--duration`` seconds over ``--connections`` keep-alive connections (a minimal asyncio HTTP/1.1
client, so that the generator's own cost stays small); each latency is measured from the
request's *scheduled* send time (no coordinated omission). It reports p50/p90/p99/max per query:
the default page (limit 100) and the whole picture (limit 1000). One JSON line per query, then
a Markdown table.

    .venv/bin/python bench/api_bench.py                       # 1,000 tracks, 200 req/s, 20 s each
    .venv/bin/python bench/api_bench.py --targets 1000 --rate 200 --duration 20 --limits 100 1000

Never run as a test: these are measurements.
"""

from __future__ import annotations

import argparse
import asyncio
import json
import math
import multiprocessing as mp
import socket
import statistics
import sys
import tempfile
import time
from pathlib import Path
from typing import Any

T0 = 1_675_300_000.0
#: Scans fed before measuring (the tracker confirms the targets).
WARMUP_STEPS = 8


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return int(s.getsockname()[1])


def scan(targets: int, time_s: float, seed: int = 7) -> list[Any]:
    """One scan of ``targets`` objects flying straight: GEODETIC reports, aircraft with identity."""
    import numpy as np

    from stratowatch.model import MeasurementKind, Observation

    rng = np.random.default_rng(seed)
    lat0 = rng.uniform(38.0, 52.0, targets)
    lon0 = rng.uniform(-118.0, -92.0, targets)
    aircraft = np.arange(targets) % 2 == 0
    speed = np.where(aircraft, rng.uniform(180.0, 250.0, targets), rng.uniform(5.0, 25.0, targets))
    heading = rng.uniform(0.0, 2 * np.pi, targets)
    alt = np.where(
        aircraft, rng.uniform(9_000.0, 12_000.0, targets), rng.uniform(18_000.0, 20_000.0, targets)
    )
    ve, vn = speed * np.sin(heading), speed * np.cos(heading)
    dt = time_s - T0
    lat = lat0 + vn * dt / 111_320.0
    lon = lon0 + ve * dt / (111_320.0 * np.cos(np.radians(lat0)))
    noise = np.random.default_rng(int(time_s)).normal(0.0, 30.0, (targets, 2)) / 111_320.0
    lat, lon = lat + noise[:, 0], lon + noise[:, 1]
    out = []
    for i in range(targets):
        ident = f"icao:{0xA00000 + i:06X}" if aircraft[i] else None
        out.append(
            Observation(
                time_s=time_s,
                sensor_id="adsb" if aircraft[i] else "radar",
                kind=MeasurementKind.GEODETIC,
                value=(float(lat[i]), float(lon[i]), float(alt[i])),
                sigma=(50.0, 50.0),
                velocity_enu_mps=(float(ve[i]), float(vn[i]), 0.0) if aircraft[i] else None,
                velocity_sigma_mps=5.0 if aircraft[i] else math.nan,
                identity=ident,
            )
        )
    return out


def serve(port: int, db: str, targets: int, predictions: bool, ingest_on: bool) -> None:
    """The server process: ``stratowatch serve``'s own loop (store, pipeline, API on uvicorn)
    with a feed that sends one scan of ``targets`` objects per second into the pipeline."""
    import asyncio
    import logging

    from stratowatch.config import load_settings
    from stratowatch.service.app import run

    logging.basicConfig(level=logging.ERROR)
    settings = load_settings(
        None,
        env={},
        check_files=False,
        store_url=f"sqlite:///{db}",
        api={"host": "127.0.0.1", "port": port},
        predictions={"enabled": predictions},
        winds={"analytic": predictions},
    )

    async def feed(pipeline: Any) -> None:
        k = 0
        next_s = time.monotonic()
        while True:
            obs = await asyncio.to_thread(scan, targets, T0 + k)
            await asyncio.to_thread(pipeline.process, T0 + k, obs)
            k += 1
            next_s += 1.0
            if k >= WARMUP_STEPS and not ingest_on:
                return
            await asyncio.sleep(max(0.0, next_s - time.monotonic()))

    run(settings, feed=feed)


class _Connection:
    """A minimal HTTP/1.1 keep-alive client connection: GET, read the head, read Content-Length
    bytes. Cheap enough that the load generator measures the server, not itself."""

    def __init__(self, host: str, port: int) -> None:
        self.host, self.port = host, port
        self.reader: asyncio.StreamReader | None = None
        self.writer: asyncio.StreamWriter | None = None

    async def get(self, path: str) -> tuple[int, int]:
        if self.writer is None:
            self.reader, self.writer = await asyncio.open_connection(self.host, self.port)
        assert self.reader is not None
        self.writer.write(f"GET {path} HTTP/1.1\r\nHost: {self.host}\r\n\r\n".encode())
        head = await self.reader.readuntil(b"\r\n\r\n")
        lines = head.decode("latin-1").split("\r\n")
        status = int(lines[0].split()[1])
        length = next(int(ln.split(":", 1)[1]) for ln in lines if ln.lower().startswith("content-length:"))
        await self.reader.readexactly(length)
        return status, length

    def close(self) -> None:
        if self.writer is not None:
            self.writer.close()
            self.writer = None


async def drive(
    host: str, port: int, path: str, rate: float, duration_s: float, connections: int
) -> dict[str, Any]:
    latencies: list[float] = []
    errors: dict[str, int] = {}
    sizes: list[int] = []
    idle: asyncio.Queue[_Connection] = asyncio.Queue()
    for _ in range(connections):
        idle.put_nowait(_Connection(host, port))

    async def one(scheduled: float) -> None:
        conn = await idle.get()
        try:
            status, size = await conn.get(path)
            if status == 200:
                sizes.append(size)
            else:
                errors[str(status)] = errors.get(str(status), 0) + 1
        except (OSError, asyncio.IncompleteReadError, ValueError, StopIteration) as exc:
            errors[type(exc).__name__] = errors.get(type(exc).__name__, 0) + 1
            conn.close()
        finally:
            latencies.append(time.perf_counter() - scheduled)
            idle.put_nowait(conn)

    start = time.perf_counter() + 0.1
    n = int(rate * duration_s)
    tasks = []
    for i in range(n):
        scheduled = start + i / rate
        delay = scheduled - time.perf_counter()
        if delay > 0:
            await asyncio.sleep(delay)
        tasks.append(asyncio.create_task(one(scheduled)))
    await asyncio.gather(*tasks)
    elapsed = time.perf_counter() - start
    while not idle.empty():
        idle.get_nowait().close()
    latencies.sort()

    def pct(p: float) -> float:
        return 1000.0 * latencies[min(len(latencies) - 1, math.ceil(p / 100 * len(latencies)) - 1)]

    return {
        "requests": n,
        "errors": errors,
        "achieved_rps": round(len(sizes) / elapsed, 1),
        "p50_ms": round(pct(50), 2),
        "p90_ms": round(pct(90), 2),
        "p99_ms": round(pct(99), 2),
        "max_ms": round(1000.0 * latencies[-1], 2),
        "mean_ms": round(1000.0 * statistics.fmean(latencies), 2),
        "body_kb": round(statistics.fmean(sizes) / 1024, 1) if sizes else 0.0,
    }


def ingest_state(base: str) -> tuple[int, float]:
    """Pipeline steps so far and seconds spent in them, from /health."""
    import httpx

    info = httpx.get(f"{base}/health", timeout=10).json()["pipeline"]
    return int(info["steps"]), float(info["counters"]["stratowatch_pipeline_busy_seconds_total"][1])


def main() -> int:
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--targets", type=int, default=1000)
    ap.add_argument("--rate", type=float, default=200.0, help="requests per second")
    ap.add_argument("--duration", type=float, default=20.0, help="seconds per query")
    ap.add_argument("--connections", type=int, default=32)
    ap.add_argument("--limits", type=int, nargs="+", default=[100, 1000], help="page sizes to query")
    ap.add_argument("--predictions", action="store_true", help="also run drift predictions (process pool)")
    ap.add_argument("--no-ingest", action="store_true", help="no ingest while measuring (baseline)")
    args = ap.parse_args()

    import httpx

    port = free_port()
    with tempfile.TemporaryDirectory() as tmp:
        db = str(Path(tmp) / "bench.db")
        ctx = mp.get_context("spawn")
        proc = ctx.Process(
            target=serve, args=(port, db, args.targets, args.predictions, not args.no_ingest), daemon=True
        )
        proc.start()
        base = f"http://127.0.0.1:{port}"
        deadline = time.monotonic() + 300
        while True:
            try:
                if httpx.get(f"{base}/health", timeout=2).status_code == 200:
                    break
            except httpx.HTTPError:
                pass
            if time.monotonic() > deadline or not proc.is_alive():
                print("server did not start", file=sys.stderr)
                return 1
            time.sleep(0.2)
        while ingest_state(base)[0] < WARMUP_STEPS:
            if time.monotonic() > deadline or not proc.is_alive():
                print("the pipeline did not step (see the server's log above)", file=sys.stderr)
                proc.terminate()
                return 1
            time.sleep(0.2)
        live = httpx.get(f"{base}/api/v1/tracks", params={"limit": 1}).json()["total"]
        rows = []
        try:
            for limit in args.limits:
                steps0, busy0 = ingest_state(base)
                result = asyncio.run(
                    drive(
                        "127.0.0.1",
                        port,
                        f"/api/v1/tracks?limit={limit}",
                        args.rate,
                        args.duration,
                        args.connections,
                    )
                )
                steps1, busy1 = ingest_state(base)
                steps = steps1 - steps0
                row = {
                    "query": f"GET /api/v1/tracks?limit={limit}",
                    "live_tracks": live,
                    "rate_rps": args.rate,
                    "duration_s": args.duration,
                    **result,
                    "ingest_steps": steps,
                    "ingest_obs_per_s": round(steps * args.targets / args.duration, 1),
                    "ingest_mean_step_ms": round(1000 * (busy1 - busy0) / max(steps, 1), 1),
                }
                rows.append(row)
                print(json.dumps(row), flush=True)
        finally:
            proc.terminate()
            proc.join(10)
    print()
    print(
        "| query | live tracks | rate (req/s) | achieved | p50 ms | p99 ms | max ms | errors | ingest obs/s |"
    )
    print("|---|---|---|---|---|---|---|---|---|")
    for r in rows:
        print(
            f"| `{r['query']}` | {r['live_tracks']} | {r['rate_rps']:.0f} | {r['achieved_rps']} "
            f"| {r['p50_ms']} | {r['p99_ms']} | {r['max_ms']} | {sum(r['errors'].values())} "
            f"| {r['ingest_obs_per_s']} |"
        )
    return 0


if __name__ == "__main__":
    sys.exit(main())
