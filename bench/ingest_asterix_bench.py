"""ASTERIX CAT048 ingest throughput: the bulk decoder and the reader vs asterix-decoder.

Synthesises a realistic monoradar stream (EUROCONTROL CAT048: FSPEC, I010, I140, I020, I040,
I070, I090, I220, I240, I161, I200, I170): three radars with 4-s, 5-s and 10-s rotations,
targets reported in azimuth order, ~60 % Mode S (address, often callsign, track number and
velocity), ~25 % Mode A/C, ~15 % primary-only plots, 20 records per data block (one UDP
datagram). Then times, on the same bytes:

* ``bulk``: :func:`stratowatch.ingest._cat048.decode_cat048` (numba framing + numpy fields);
* ``reader``: :class:`stratowatch.ingest.asterix.AsterixReader` end to end (framing, decode,
  time anchoring, ground points for height-less plots, one Observation per record);
* ``naive``: asterix-decoder used the plain way, ``asterix.parse(block)`` per data block plus
  reading the same fields out of its dicts; and ``asterix.parse`` alone.

The decoded values are cross-checked against asterix-decoder on the first records. Run::

    .venv/bin/python bench/ingest_asterix_bench.py --records 200000
"""

from __future__ import annotations

import argparse
import io
import time
from collections.abc import Callable
from datetime import date

import asterix
import numpy as np

from stratowatch.ingest._cat048 import decode_cat048, encode_cat048
from stratowatch.ingest.asterix import AsterixReader, frame_blocks
from stratowatch.ingest.base import ReadContext
from stratowatch.ingest.registry import registry_from_dict
from stratowatch.model import Observation


def synthesise(n_records: int, seed: int = 7) -> bytes:
    rng = np.random.default_rng(seed)
    radars = [(25, 201, 4.0), (25, 202, 5.0), (25, 14, 10.0)]
    per = n_records // len(radars)
    parts = []
    for sac, sic, period in radars:
        n_targets = 400
        n_scans = max(1, per // n_targets)
        az0 = rng.uniform(0, 360, n_targets)
        rho0 = rng.uniform(5, 240, n_targets)
        scan = np.repeat(np.arange(n_scans), n_targets)
        tgt = np.tile(np.arange(n_targets), n_scans)
        theta = (az0[tgt] + 0.01 * scan) % 360.0
        rho = np.clip(rho0[tgt] + 0.002 * scan, 0.5, 255.0)
        tod = 43200.0 + scan * period + theta / 360.0 * period
        order = np.argsort(tod, kind="stable")
        kind = rng.choice(3, n_targets, p=[0.6, 0.25, 0.15])[tgt]  # 0 Mode S, 1 SSR, 2 PSR
        modes, ssr = kind == 0, kind <= 1
        fl = np.where(ssr, np.round(rng.uniform(20, 450, n_targets)[tgt] * 4) / 4, np.nan)
        cs_pool = np.array(
            [
                f"{a}{b:04d}"
                for a, b in zip(
                    rng.choice(["DLH", "RYR", "CTN", "AFR"], n_targets),
                    rng.integers(1, 9999, n_targets),
                    strict=True,
                )
            ]
        )
        fields = dict(
            sac=sac,
            sic=sic,
            tod_s=tod,
            typ=np.where(modes, 5, np.where(ssr, 2, 1)),
            rho_nm=rho,
            theta_deg=theta,
            mode3a=np.where(ssr, rng.integers(0, 4096, n_targets)[tgt], -1),
            flight_level=fl,
            icao=np.where(modes, rng.integers(0, 1 << 24, n_targets)[tgt], -1),
            callsign=np.where(modes & (rng.random(n_targets)[tgt] < 0.7), cs_pool[tgt], ""),
            track_number=np.where(modes, tgt, -1),
            groundspeed_nm_s=np.where(modes, rng.uniform(0.03, 0.14, n_targets)[tgt], np.nan),
            heading_deg=rng.uniform(0, 360, n_targets)[tgt],
        )
        fields = {k: (v[order] if isinstance(v, np.ndarray) else v) for k, v in fields.items()}
        parts.append((tod[order], fields))
    # Interleave the radars' blocks in time order (as on a shared network).
    blobs = []
    for _, f in parts:
        data = encode_cat048(**f, records_per_block=20)
        blocks = frame_blocks(data)
        times = f["tod_s"][np.arange(len(blocks)) * 20]
        blobs.extend((float(t), data[s:e]) for t, (_, s, e) in zip(times, blocks, strict=True))
    blobs.sort(key=lambda x: x[0])
    return b"".join(b for _, b in blobs)


class CountingSink:
    def __init__(self) -> None:
        self.n = 0
        self.q = 0
        self.m = 0

    def observation(self, obs: Observation) -> None:
        self.n += 1

    def message(self, kind: str) -> None:
        self.m += 1

    def quarantine(self, record: object) -> None:
        self.q += 1


def best_of(repeat: int, fn: Callable[[], object]) -> tuple[float, object]:
    best, out = float("inf"), None
    for _ in range(repeat):
        t0 = time.perf_counter()
        out = fn()
        best = min(best, time.perf_counter() - t0)
    return best, out


def naive(data: bytes, blocks: list[tuple[int, int, int]]) -> int:
    """asterix-decoder the plain way: parse each block, read the fields out of the dicts."""
    n = 0
    for _, s, e in blocks:
        for r in asterix.parse(data[s:e], verbose=False):
            _ = (
                r["I010"]["SAC"]["val"],
                r["I010"]["SIC"]["val"],
                r["I140"]["ToD"]["val"],
                r["I040"]["RHO"]["val"],
                r["I040"]["THETA"]["val"],
                r.get("I090", {}).get("FL", {}).get("val"),
                r.get("I220", {}).get("ACAddr", {}).get("val"),
                r.get("I240", {}).get("TId", {}).get("val"),
            )
            n += 1
    return n


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--records", type=int, default=200_000)
    ap.add_argument("--repeat", type=int, default=3)
    args = ap.parse_args()

    data = synthesise(args.records)
    blocks = frame_blocks(data)
    starts = np.array([s + 3 for _, s, _ in blocks])
    ends = np.array([e for _, _, e in blocks])
    decode_cat048(data[:4096], starts[:1], ends[:1])  # JIT warm-up (cached after the first run)
    n = len(decode_cat048(data, starts, ends))
    print(f"stream: {n} CAT048 records in {len(blocks)} blocks, {len(data) / 1e6:.1f} MB")

    # Cross-check against asterix-decoder on the first 2000 blocks.
    k = min(2000, len(blocks))
    sub = data[: blocks[k - 1][2]]
    recs = decode_cat048(sub, starts[:k], ends[:k])
    ref = asterix.parse(sub, verbose=False)
    assert len(ref) == len(recs)
    assert np.allclose(recs.rho_nm, [r["I040"]["RHO"]["val"] for r in ref])
    assert np.allclose(recs.theta_deg, [r["I040"]["THETA"]["val"] for r in ref])
    assert np.allclose(recs.tod_s, [r["I140"]["ToD"]["val"] for r in ref])
    fl_ref = np.array([r["I090"]["FL"]["val"] if "I090" in r else np.nan for r in ref])
    assert np.array_equal(recs.flight_level, fl_ref, equal_nan=True)
    assert recs.icao.tolist() == [int(r["I220"]["ACAddr"]["val"], 16) if "I220" in r else -1 for r in ref]
    print(f"cross-check: {len(ref)} records identical to asterix-decoder (rho, theta, ToD, FL, address)")

    t_bulk, _ = best_of(args.repeat, lambda: decode_cat048(data, starts, ends))
    registry = registry_from_dict(
        {
            "sensor": [
                {"id": f"r{i}", "lat_deg": 45.0, "lon_deg": 15.0 + i, "aliases": [f"asterix:25/{s}"]}
                for i, s in enumerate((201, 202, 14))
            ]
        }
    )

    def run_reader() -> CountingSink:
        sink = CountingSink()
        AsterixReader(registry).read(io.BytesIO(data), ReadContext("bench", date_utc=date(2024, 1, 2)), sink)
        return sink

    t_reader, sink = best_of(args.repeat, run_reader)
    assert isinstance(sink, CountingSink) and sink.n + sink.m + sink.q == n
    nb = min(len(blocks), max(1, len(blocks) // 4))  # the naive path is slow: time a quarter
    sub_blocks = blocks[:nb]
    n_sub = len(decode_cat048(data, starts[:nb], ends[:nb]))
    asterix.parse(data[blocks[0][1] : blocks[0][2]], verbose=False)  # library warm-up
    t_naive, _ = best_of(args.repeat, lambda: naive(data, sub_blocks))

    def parse_only() -> None:
        for _, s, e in sub_blocks:
            asterix.parse(data[s:e], verbose=False)

    t_parse, _ = best_of(args.repeat, parse_only)

    rate = {
        "bulk decoder (numba+numpy)": n / t_bulk,
        "AsterixReader -> Observations": n / t_reader,
        "asterix-decoder: parse per block + fields": n_sub / t_naive,
        "asterix-decoder: parse per block only": n_sub / t_parse,
    }
    for name, r in rate.items():
        print(f"{name:45s} {r:14,.0f} records/s")
    base = rate["asterix-decoder: parse per block + fields"]
    print(f"ratio bulk / naive:   {rate['bulk decoder (numba+numpy)'] / base:8.1f}x")
    print(f"ratio reader / naive: {rate['AsterixReader -> Observations'] / base:8.1f}x")


if __name__ == "__main__":
    main()
