"""Fuzzing every ADS-B parser: random bytes and mutated real frames never raise, never hang, and
every input unit is accounted for (observation, counted message or quarantine record).

hypothesis always runs; a short coverage-guided atheris run is added where atheris installs
(it runs this file as a script in a subprocess, because atheris ends its process when done).
"""

from __future__ import annotations

import csv
import gzip
import io
import itertools
import json
import os
import subprocess
import sys
from pathlib import Path

import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from stratowatch.ingest.base import CollectingSink, ReadContext, Reader
from stratowatch.ingest.beast import BeastReader
from stratowatch.ingest.modes import ModeSReader
from stratowatch.ingest.readsb import ReadsbReader
from stratowatch.ingest.sbs import SbsReader

REPO_ROOT = next(p for p in Path(__file__).resolve().parents if (p / "pyproject.toml").exists())
ADSB = REPO_ROOT.parent / "shared" / "data" / "adsb"


def _seeds() -> dict[str, list[bytes]]:
    seeds = {
        "modes": [
            b"*8D40621D58C382D690C8AC2863A7;\n*8D40621D58C386435CC412692AD6;\n",
            b'1.0,"8D4840D6202CC371C32CE0576098",4840D6,4\n2.0,8D485020994409940838175B284F\n',
            b'{"timestamp": 1.5, "frame": "8f393322384a02aea63afc43dcba"}\n',
            b"@0000000000008D40621D58C382D690C8AC2863A7;\n*5D3981E46DC8EB;\n",
        ],
        "sbs": [
            b"MSG,3,1,1,4CA2D6,1,2026/11/26,12:00:00.000,2026/11/26,12:00:00.000,,37000,,,51.5,-0.1,,,0,,0,0\n"
            b"MSG,4,1,1,4CA2D6,1,2026/11/26,12:00:01.000,2026/11/26,12:00:01.000,,,450,270.5,,,-640,,0,,0,0\n"
            b"MSG,1,1,1,4CA2D6,1,,12:00:02.000,,,BAW123  ,,,,,,,,0,,0,0\n",
            b"STA,,5,179,400AE7,10103,2008/11/28,14:58:51.153,2008/11/28,14:58:51.153,RM\n",
        ],
        "beast": [
            bytes.fromhex("1a33000015a8877e0d8d48520a58c38118524b549e1b08")
            + bytes.fromhex("1a32000015d722480e5d3981e46dc8eb1a31000000000001402000"),
            bytes.fromhex("1a331a1a00001a1a00408d40621d58c382d690c8ac2863a7"),
        ],
        "readsb": [
            json.dumps({"now": 1000.0, "aircraft": [{"hex": "a1b2c3", "lat": 45.0, "lon": -100.0,
                        "alt_baro": 60000, "gs": 20, "track": 90, "category": "B2"}]}).encode(),
            b'{"icao":"ac671b","timestamp":1738703622.6,"trace":[[0.0,16.7,-88.0,32000,478.6,327.8,1,0,'
            b'{"flight":"DAL1812 ","nac_p":10},"adsb_icao",33825,32,280,0.0],[8.9,16.8,-88.1,"ground",'
            b"null,null,0,null,null]]}",
        ],
    }  # fmt: skip
    if ADSB.is_dir():  # real frames as extra seeds
        with (ADSB / "pymodes_sample_data_adsb.csv").open() as f:
            rows = list(itertools.islice(csv.reader(f), 64))
        seeds["modes"].append("".join(f"{r[0]},{r[1]}\n" for r in rows).encode())
        with gzip.open(ADSB / "traffic_rs1090_full_flight_short.jsonl.gz") as g:
            seeds["modes"].append(b"".join(itertools.islice(g, 64)))
        seeds["beast"].append((ADSB / "traffic_sample_dump1090_beast.bin").read_bytes()[:1500])
        seeds["readsb"].append((ADSB / "traffic_readsb_trace_full_ac671b.json").read_bytes()[:3000] + b"]}")
    return seeds


SEEDS = _seeds()
READERS = {
    "modes": lambda chunk: ModeSReader(clock=lambda: 1e9, chunk_bytes=chunk),
    "sbs": lambda chunk: SbsReader(chunk_bytes=chunk),
    "beast": lambda chunk: BeastReader(clock=lambda: 1e9, chunk_bytes=chunk),
    "readsb": lambda chunk: ReadsbReader(),
}


def check(fmt: str, data: bytes, chunk: int = 1 << 20) -> None:
    """The property: no exception, and every unit ends as exactly one outcome."""
    reader: Reader = READERS[fmt](chunk)
    sink = CollectingSink()
    stats = reader.read(
        io.BytesIO(data), ReadContext("fuzz", reference_lat_deg=52.0, reference_lon_deg=4.0), sink
    )
    assert stats.accounted == stats.units, stats.as_dict()
    assert len(sink.observations) == stats.observations
    assert len(sink.quarantined) == sum(stats.quarantined.values())
    assert sum(sink.messages.values()) == sum(stats.messages.values())
    for o in sink.observations:
        assert -90 <= o.value[0] <= 90 and -180 <= o.value[1] <= 180


@st.composite
def mutated(draw: st.DrawFn, fmt: str) -> bytes:
    data = bytearray(draw(st.sampled_from(SEEDS[fmt])))
    for _ in range(draw(st.integers(1, 8))):
        op = draw(st.sampled_from(["flip", "delete", "insert", "duplicate", "truncate"]))
        pos = draw(st.integers(0, max(len(data) - 1, 0)))
        if op == "flip" and data:
            data[pos] ^= 1 << draw(st.integers(0, 7))
        elif op == "delete":
            del data[pos : pos + draw(st.integers(1, 16))]
        elif op == "insert":
            data[pos:pos] = draw(st.binary(min_size=1, max_size=16))
        elif op == "duplicate":
            data[pos:pos] = data[pos : pos + draw(st.integers(1, 64))]
        else:
            del data[pos:]
    return bytes(data)


FUZZ = settings(max_examples=150, deadline=2000, suppress_health_check=[HealthCheck.too_slow])


@pytest.mark.parametrize("fmt", sorted(READERS))
def test_seeds_are_clean(fmt: str) -> None:
    for seed in SEEDS[fmt]:
        check(fmt, seed)


@pytest.mark.parametrize("fmt", sorted(READERS))
@FUZZ
@given(data=st.data())
def test_mutated_frames(fmt: str, data: st.DataObject) -> None:
    check(fmt, data.draw(mutated(fmt)), chunk=data.draw(st.sampled_from([7, 64, 1 << 20])))


@pytest.mark.parametrize("fmt", sorted(READERS))
@FUZZ
@given(blob=st.binary(max_size=2000))
def test_random_bytes(fmt: str, blob: bytes) -> None:
    check(fmt, blob)


@FUZZ
@given(lines=st.lists(st.text(alphabet="MSG,0123456789./:-ABCDEF \t", max_size=120), max_size=30))
def test_sbs_like_text(lines: list[str]) -> None:
    check("sbs", "\n".join(lines).encode())


# The atheris harness runs in a fresh interpreter so that only stratowatch's own pure-Python
# reader modules are instrumented (the numba kernel of the SBS reader must stay uninstrumented).
ATHERIS_HARNESS = """
import io, json, sys
import atheris
with atheris.instrument_imports(include=[
    "stratowatch.ingest._modes_core", "stratowatch.ingest.modes",
    "stratowatch.ingest.beast", "stratowatch.ingest.readsb",
]):
    from stratowatch.ingest.base import CollectingSink, ReadContext
    from stratowatch.ingest.beast import BeastReader
    from stratowatch.ingest.modes import ModeSReader
    from stratowatch.ingest.readsb import ReadsbReader
from stratowatch.ingest.sbs import SbsReader

SEEDS = {k: [bytes.fromhex(x) for x in v] for k, v in json.load(open(sys.argv.pop(1))).items()}
FORMATS = sorted(SEEDS)
MAKE = {
    "modes": lambda c: ModeSReader(clock=lambda: 1e9, chunk_bytes=c),
    "sbs": lambda c: SbsReader(chunk_bytes=c),
    "beast": lambda c: BeastReader(clock=lambda: 1e9, chunk_bytes=c),
    "readsb": lambda c: ReadsbReader(),
}

def check(fmt, data, chunk=1 << 20):
    sink = CollectingSink()
    ctx = ReadContext("fuzz", reference_lat_deg=52.0, reference_lon_deg=4.0)
    stats = MAKE[fmt](chunk).read(io.BytesIO(data), ctx, sink)
    assert stats.accounted == stats.units, stats.as_dict()
    assert len(sink.observations) == stats.observations

def one_input(data):
    fdp = atheris.FuzzedDataProvider(data)
    fmt = FORMATS[fdp.ConsumeIntInRange(0, len(FORMATS) - 1)]
    if fdp.ConsumeBool():
        seeds = SEEDS[fmt]
        base = bytearray(seeds[fdp.ConsumeIntInRange(0, len(seeds) - 1)])
        for _ in range(fdp.ConsumeIntInRange(1, 4)):
            if base:
                base[fdp.ConsumeIntInRange(0, len(base) - 1)] = fdp.ConsumeInt(1) & 0xFF
        check(fmt, bytes(base), chunk=fdp.ConsumeIntInRange(7, 4096))
    else:
        check(fmt, fdp.ConsumeBytes(fdp.remaining_bytes()))

atheris.Setup(sys.argv, one_input)
atheris.Fuzz()
"""


def test_atheris_coverage_guided_run(tmp_path: Path) -> None:
    pytest.importorskip("atheris", reason="atheris does not install here (it is optional)")
    seeds = tmp_path / "seeds.json"
    seeds.write_text(json.dumps({k: [x.hex() for x in v] for k, v in SEEDS.items()}))
    proc = subprocess.run(
        [sys.executable, "-c", ATHERIS_HARNESS, str(seeds), "-runs=20000", "-max_total_time=6", "-seed=1"],
        capture_output=True, timeout=120, env=dict(os.environ, PYTHONHASHSEED="0"),
    )  # fmt: skip
    err = proc.stderr.decode(errors="replace")
    assert proc.returncode == 0, err[-3000:]
    assert "Done " in err and " runs in " in err, err[-1000:]
