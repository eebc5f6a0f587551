"""Fuzzing every reader of this half (ASTERIX, APRS, SondeHub, WSPR, sightings, plots, geodetic
CSV) with random bytes and mutated valid inputs: no exception escapes, no hang (hypothesis
deadline), and every unit read is accounted for exactly once."""

from __future__ import annotations

import io
import json
from pathlib import Path

import numpy as np
import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from stratowatch.ingest._cat048 import decode_cat048, encode_cat048
from stratowatch.ingest.asterix import AsterixReader, frame_blocks
from stratowatch.ingest.base import CollectingSink, ReadContext, get_reader
from stratowatch.ingest.registry import registry_from_dict

REPO_ROOT = Path(__file__).resolve().parents[2]
ASTERIX = REPO_ROOT.parent / "shared" / "data" / "asterix"

FORMATS = ["asterix", "aprs", "sondehub", "wspr", "sightings", "plots", "geodetic-csv"]

SAMPLES: dict[str, bytes] = {
    "aprs": (
        b"2023-02-04T18:39:00Z N0CALL-11>APRS,WIDE2-1,qAR,K0XYZ:/183850h4903.50N/07201.75WO090/010/A=060000\n"
        b'N0CALL-11>APRS,qAR:`(_fn"Oj/]"4-}146.520MHz\n'
        b"N0CALL-11>APRS:>status\n"
    ),
    "sondehub": (
        json.dumps(
            {"serial": "S1", "datetime": "2023-01-16T23:07:17Z", "lat": 37.7, "lon": -122.2, "alt": 100.0}
        )
        + "\n"
        + json.dumps({"serial": "S1", "datetime": "2023-01-16T23:07:18Z", "lat": 37.7, "lon": -122.2})
        + "\n"
    ).encode(),
    "wspr": (
        b"time,tx_sign,tx_loc,power,rx_sign\n"
        b"2023-06-01 12:00:00,K1ABC,FN31,13,W1AW\n"
        b"2023-06-01 12:02:00,Q31ATD,FJ24,23,W1AW\n"
    ),
    "sightings": (
        b"time_utc,lat,lon,bearing_deg,elevation_deg,text\n"
        b"2023-02-01T20:00:00Z,45.9,-112.5,90,10,white\n"
        b"2023-02-01T20:00:00Z,45.9,-112.5,,,white\n"
    ),
    "plots": b"time_s,sensor_id,x_m,y_m,z_m,sigma_m,sigma_z_m\n0,r1,1,2,3,4,5\n1,r1,1,2,3,4,5\n",
    "geodetic-csv": (
        b"time_utc,lat,lon,alt_m,sigma_h_m,sigma_v_m,sensor_id,identity\n"
        b"2023-02-04T18:39:00Z,33.5,-78.9,18500,200,300,p,track:US:1\n"
    ),
    "asterix": encode_cat048(
        sac=25,
        sic=201,
        tod_s=np.arange(12.0),
        typ=np.arange(12) % 8,
        rho_nm=np.linspace(1, 200, 12),
        theta_deg=np.linspace(0, 359, 12),
        mode3a=np.where(np.arange(12) % 3 == 0, -1, 0o1234),
        flight_level=np.where(np.arange(12) % 4 == 0, np.nan, 350.0),
        icao=np.where(np.arange(12) % 2 == 0, 0x3C660C, -1),
        callsign=np.where(np.arange(12) % 2 == 0, "DLH65A", ""),
        track_number=np.arange(12),
        records_per_block=4,
    ),
}

REGISTRY = registry_from_dict(
    {"sensor": [{"id": "radar", "lat_deg": 45.0, "lon_deg": 15.0, "aliases": ["asterix:25/201"]}]}
)


def run_reader(fmt: str, data: bytes) -> None:
    reader = get_reader(fmt)
    if hasattr(reader, "registry"):
        reader.registry = REGISTRY  # type: ignore[attr-defined]
    sink = CollectingSink()
    stats = reader.read(io.BytesIO(data), ReadContext("fuzz", date_utc=None), sink)
    assert stats.accounted == stats.units
    assert len(sink.quarantined) == sum(stats.quarantined.values())
    assert len(sink.observations) == stats.observations


@st.composite
def mutated(draw: st.DrawFn, base: bytes) -> bytes:
    data = bytearray(base)
    for _ in range(draw(st.integers(1, 8))):
        op = draw(st.sampled_from(["flip", "set", "insert", "delete", "truncate"]))
        if not data:
            break
        i = draw(st.integers(0, len(data) - 1))
        if op == "flip":
            data[i] ^= 1 << draw(st.integers(0, 7))
        elif op == "set":
            data[i] = draw(st.integers(0, 255))
        elif op == "insert":
            data[i:i] = draw(st.binary(min_size=1, max_size=8))
        elif op == "delete":
            del data[i : i + draw(st.integers(1, 8))]
        else:
            del data[i:]
    return bytes(data)


FUZZ = settings(max_examples=60, deadline=3000, suppress_health_check=[HealthCheck.too_slow])


@pytest.mark.parametrize("fmt", FORMATS)
@FUZZ
@given(data=st.binary(max_size=600))
def test_random_bytes(fmt: str, data: bytes) -> None:
    run_reader(fmt, data)


@pytest.mark.parametrize("fmt", FORMATS)
@FUZZ
@given(st.data())
def test_mutated_valid_input(fmt: str, data: st.DataObject) -> None:
    run_reader(fmt, data.draw(mutated(SAMPLES[fmt])))


@settings(max_examples=150, deadline=2000)
@given(data=st.data())
def test_cat048_bulk_decoder_never_reads_out_of_bounds(data: st.DataObject) -> None:
    raw = data.draw(mutated(SAMPLES["asterix"]))
    blocks = [(s + 3, e) for c, s, e in frame_blocks(raw) if c >= 0]
    starts = np.array([s for s, _ in blocks], dtype=np.int64)
    ends = np.array([e for _, e in blocks], dtype=np.int64)
    recs = decode_cat048(raw, starts, ends)
    # Records tile each block exactly: nothing is read twice or skipped.
    assert int(recs.length.sum()) == int((ends - starts).sum())
    assert (recs.length > 0).all()


@pytest.mark.skipif(not ASTERIX.is_dir(), reason=f"real ASTERIX samples not found at {ASTERIX}")
@settings(max_examples=25, deadline=10_000, suppress_health_check=[HealthCheck.too_slow])
@given(data=st.data())
def test_mutated_real_cat062_cat021_frames(data: st.DataObject) -> None:
    name = data.draw(st.sampled_from(["cat062cat065.raw", "cat21_re.ast", "cat034.raw", "cat_062_065.pcap"]))
    raw = data.draw(mutated((ASTERIX / name).read_bytes()))
    sink = CollectingSink()
    stats = AsterixReader(REGISTRY).read(io.BytesIO(raw), ReadContext("fuzz", date_utc=None), sink)
    assert stats.accounted == stats.units


ATHERIS_HARNESS = r"""
import io, sys
import atheris
# Numba kernels must not be instrumented (atheris rewrites their bytecode): import them first.
import stratowatch.ingest._cat048
MODULES = ["asterix", "aprs", "sondehub", "wspr", "sightings", "plots", "geodetic_csv", "_emit"]
with atheris.instrument_imports(include=["stratowatch.ingest." + m for m in MODULES]):
    from stratowatch.ingest.base import CollectingSink, ReadContext, get_reader
    FORMATS = ["asterix", "aprs", "sondehub", "wspr", "sightings", "plots", "geodetic-csv"]
    READERS = {f: get_reader(f) for f in FORMATS}

def one(data):
    if not data:
        return
    fmt = FORMATS[data[0] % len(FORMATS)]
    sink = CollectingSink()
    stats = READERS[fmt].read(io.BytesIO(data[1:]), ReadContext("atheris"), sink)
    assert stats.accounted == stats.units, (fmt, stats)

atheris.Setup(sys.argv, one)
atheris.Fuzz()
"""


def test_atheris_coverage_guided_fuzz(tmp_path: Path) -> None:
    pytest.importorskip("atheris", reason="atheris is not installed (it does not build everywhere)")
    import subprocess
    import sys

    corpus = tmp_path / "corpus"
    corpus.mkdir()
    for i, fmt in enumerate(FORMATS):
        (corpus / fmt).write_bytes(bytes([i]) + SAMPLES[fmt][:2000])
    harness = tmp_path / "harness.py"
    harness.write_text(ATHERIS_HARNESS)
    proc = subprocess.run(
        [sys.executable, str(harness), "-runs=4000", "-max_len=2048", "-seed=7", str(corpus)],
        cwd=tmp_path,
        capture_output=True,
        text=True,
        timeout=120,
    )
    assert proc.returncode == 0, proc.stderr[-3000:]
    assert "Done 4000 runs" in proc.stderr
