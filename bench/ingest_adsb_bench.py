"""ADS-B ingest throughput on one core: SBS text and raw Mode S frames.

Targets (issue): SBS >= 200,000 lines/s parsed to observations; raw Mode S >= 50,000 frames/s.
Each is measured two ways — the columnar fast path (``read_batch`` -> ObservationBatch) and the
per-row path (``read`` -> one Observation per position into a Sink) — and against a naive
baseline: for Mode S, pyModeS called once per message with the receiver as CPR reference (and
pyModeS's own streaming PipeDecoder, which pairs CPR frames like we do); for SBS, a plain
per-line ``split(',')`` + ``float()`` loop with dicts for callsign/velocity and one Observation
per position.

Mode S input is the real rs1090 recording (../shared/data/adsb), repeated with shifted times;
SBS input is synthetic (no real SBS recording is shipped), shaped like a dump1090 port-30003 feed.

    .venv/bin/python bench/ingest_adsb_bench.py            # default sizes, about a minute
    .venv/bin/python bench/ingest_adsb_bench.py --quick    # small sizes
    .venv/bin/python bench/ingest_adsb_bench.py --json bench/results/ingest_adsb.json
"""

from __future__ import annotations

import argparse
import datetime as dt
import gzip
import io
import json
import math
import os
import platform
import sys
import time
from collections.abc import Callable
from pathlib import Path

os.environ.setdefault("NUMBA_NUM_THREADS", "1")
os.environ.setdefault("OMP_NUM_THREADS", "1")
os.environ.setdefault("OPENBLAS_NUM_THREADS", "1")

import numpy as np

from stratowatch.ingest.base import QuarantineRecord, ReadContext
from stratowatch.ingest.modes import ModeSReader
from stratowatch.ingest.sbs import SbsReader
from stratowatch.model import MeasurementKind, Observation, SourceRef

REPO_ROOT = Path(__file__).resolve().parents[1]
ADSB = REPO_ROOT.parent / "shared" / "data" / "adsb"


class CountingSink:
    def __init__(self) -> None:
        self.n_obs = 0
        self.n_msg = 0
        self.n_quarantine = 0

    def observation(self, obs: Observation) -> None:
        self.n_obs += 1

    def message(self, kind: str) -> None:
        self.n_msg += 1

    def quarantine(self, record: QuarantineRecord) -> None:
        self.n_quarantine += 1


def best_of(repeat: int, fn: Callable[[], object]) -> float:
    best = float("inf")
    for _ in range(repeat):
        t0 = time.perf_counter()
        fn()
        best = min(best, time.perf_counter() - t0)
    return best


# ------------------------------------------------------------------------------------ SBS


def make_sbs(n_lines: int, n_aircraft: int = 400, seed: int = 1) -> bytes:
    rng = np.random.default_rng(seed)
    icao = rng.integers(0x100000, 0xFFFFFF, n_aircraft)
    lat0 = rng.uniform(30, 60, n_aircraft)
    lon0 = rng.uniform(-120, 20, n_aircraft)
    kinds = rng.choice([3, 4, 1, 5, 7, 8], size=n_lines, p=[0.35, 0.3, 0.05, 0.1, 0.1, 0.1])
    who = rng.integers(0, n_aircraft, n_lines)
    out = []
    for i in range(n_lines):  # generation, not measured
        a = who[i]
        t = 43200.0 + i * 0.002
        ts = f"{int(t // 3600):02d}:{int(t % 3600 // 60):02d}:{t % 60:06.3f}"
        head = f"MSG,{kinds[i]},1,1,{icao[a]:06X},1,2026/11/26,{ts},2026/11/26,{ts}"
        k = kinds[i]
        if k == 3:
            out.append(f"{head},,{rng.integers(1000, 60000)},,,{lat0[a] + i * 1e-6:.5f},"
                       f"{lon0[a] + i * 1e-6:.5f},,,0,,0,0")  # fmt: skip
        elif k == 4:
            vr = rng.integers(-20, 20) * 64
            out.append(f"{head},,,{rng.integers(0, 600)},{rng.uniform(0, 360):.1f},,,{vr},,0,,0,0")
        elif k == 1:
            out.append(f"{head},CALL{a:04d},,,,,,,,0,,0,0")
        else:
            out.append(f"{head},,{rng.integers(1000, 60000)},,,,,,,0,,0,0")
    return ("\r\n".join(out) + "\r\n").encode()


def naive_sbs(data: bytes) -> int:
    """The obvious per-line parser doing the same job: split, validate and convert the fields,
    keep each aircraft's callsign and velocity in dicts, one Observation per position."""
    callsign: dict[int, str] = {}
    velocity: dict[int, tuple[float, tuple[float, float, float]]] = {}
    n = 0
    for line_no, raw in enumerate(data.split(b"\n"), start=1):
        f = raw.rstrip(b"\r").split(b",")
        if len(f) != 22 or f[0] != b"MSG":
            continue
        tt = int(f[1])
        icao = int(f[4], 16)
        y, mo, d = (int(x) for x in f[6].split(b"/"))
        hh, mm, ss = f[7].split(b":")
        day = dt.date(y, mo, d).toordinal() - 719163
        t = day * 86400.0 + int(hh) * 3600 + int(mm) * 60 + float(ss)
        alt, gs, trk, lat, lon, vr = (float(x) if x else math.nan for x in f[11:17])
        if tt == 1:
            callsign[icao] = f[10].strip().decode()
        elif tt == 4:
            r = math.radians(trk)
            velocity[icao] = (t, (gs * math.sin(r), gs * math.cos(r), vr))
        elif tt == 3 and not math.isnan(lat):
            v = velocity.get(icao)
            Observation(
                time_s=t, sensor_id="s", kind=MeasurementKind.GEODETIC,
                value=(lat, lon, alt * 0.3048), sigma=(50.0, 30.0),
                velocity_enu_mps=v[1] if v and t - v[0] < 10 else None,
                identity=f"icao:{icao:06X}", callsign=callsign.get(icao), source=SourceRef("x", line_no),
            )  # fmt: skip
            n += 1
    return n


# --------------------------------------------------------------------------------- Mode S


def make_modes(n_frames: int) -> tuple[bytes, list[str], list[float]]:
    path = ADSB / "traffic_rs1090_full_flight_short.jsonl.gz"
    if not path.exists():
        sys.exit(f"needs the real samples in {ADSB}")
    with gzip.open(path) as f:
        rows = [json.loads(line) for line in f]
    hexes = [r["frame"] for r in rows]
    ts = np.array([r["timestamp"] for r in rows])
    span = ts[-1] - ts[0] + 60.0
    reps = -(-n_frames // len(rows))
    all_hex = (hexes * reps)[:n_frames]
    all_t = np.concatenate([ts + k * span for k in range(reps)])[:n_frames].tolist()
    text = "".join(f"{t:.6f},{h}\n" for t, h in zip(all_t, all_hex, strict=True)).encode()
    return text, all_hex, all_t


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--quick", action="store_true", help="small inputs")
    ap.add_argument("--repeat", type=int, default=3)
    ap.add_argument("--json", type=Path, help="also write the results as JSON here")
    args = ap.parse_args()
    n_sbs = 100_000 if args.quick else 500_000
    n_modes = 60_000 if args.quick else 300_000
    n_naive = 10_000 if args.quick else 30_000
    ctx = ReadContext("bench", reference_lat_deg=49.0097, reference_lon_deg=2.5479)
    results: dict[str, float | int | str] = {
        "python": platform.python_version(),
        "machine": platform.processor() or platform.machine(),
    }

    # ---- SBS
    sbs = make_sbs(n_sbs)
    SbsReader().read_batch(sbs[:2000], ctx)  # compile the numba kernel
    t_cols = best_of(args.repeat, lambda: SbsReader().read_batch(sbs, ctx))
    sink = CountingSink()
    t_rows = best_of(args.repeat, lambda: SbsReader().read(io.BytesIO(sbs), ctx, sink))
    t_naive = best_of(args.repeat, lambda: naive_sbs(sbs))
    batch, _ = SbsReader().read_batch(sbs, ctx)
    results |= {
        "sbs_lines": n_sbs,
        "sbs_observations": len(batch),
        "sbs_columnar_lines_per_s": n_sbs / t_cols,
        "sbs_rows_lines_per_s": n_sbs / t_rows,
        "sbs_naive_lines_per_s": n_sbs / t_naive,
    }

    # ---- Mode S
    import pyModeS as pms

    text, hexes, times = make_modes(n_modes)
    t_cols = best_of(args.repeat, lambda: ModeSReader().read_batch(text, ctx))
    sink = CountingSink()
    t_rows = best_of(args.repeat, lambda: ModeSReader().read(io.BytesIO(text), ctx, sink))
    batch, _ = ModeSReader().read_batch(text, ctx)
    sub_h, sub_t = hexes[:n_naive], times[:n_naive]
    ref = (ctx.reference_lat_deg, ctx.reference_lon_deg)
    t_pms_single = best_of(1, lambda: [pms.decode(h, reference=ref) for h in sub_h])
    t_pms_pipe = best_of(1, lambda: pms.decode(sub_h, timestamps=sub_t))
    results |= {
        "modes_frames": n_modes,
        "modes_observations": len(batch),
        "modes_columnar_frames_per_s": n_modes / t_cols,
        "modes_rows_frames_per_s": n_modes / t_rows,
        "pymodes_single_frames_per_s": n_naive / t_pms_single,
        "pymodes_pipe_frames_per_s": n_naive / t_pms_pipe,
    }
    results["sbs_columnar_vs_naive"] = results["sbs_columnar_lines_per_s"] / results["sbs_naive_lines_per_s"]  # type: ignore[operator]
    results["sbs_rows_vs_naive"] = results["sbs_rows_lines_per_s"] / results["sbs_naive_lines_per_s"]  # type: ignore[operator]
    results["modes_columnar_vs_pymodes_single"] = (
        results["modes_columnar_frames_per_s"] / results["pymodes_single_frames_per_s"]  # type: ignore[operator]
    )
    results["modes_rows_vs_pymodes_single"] = (
        results["modes_rows_frames_per_s"] / results["pymodes_single_frames_per_s"]  # type: ignore[operator]
    )
    results["modes_columnar_vs_pymodes_pipe"] = (
        results["modes_columnar_frames_per_s"] / results["pymodes_pipe_frames_per_s"]  # type: ignore[operator]
    )

    width = max(len(k) for k in results)
    for k, v in results.items():
        print(f"{k:<{width}}  {v:,.1f}" if isinstance(v, float) else f"{k:<{width}}  {v}")
    ok_sbs = results["sbs_columnar_lines_per_s"] >= 200_000  # type: ignore[operator]
    ok_modes = results["modes_columnar_frames_per_s"] >= 50_000  # type: ignore[operator]
    print(f"target SBS >= 200,000 lines/s: {'met' if ok_sbs else 'NOT met'}; "
          f"raw Mode S >= 50,000 frames/s: {'met' if ok_modes else 'NOT met'}")  # fmt: skip
    if args.json:
        args.json.parent.mkdir(parents=True, exist_ok=True)
        args.json.write_text(json.dumps(results, indent=2) + "\n")


if __name__ == "__main__":
    main()
