"""Raw Mode S / ADS-B frames: the vectorised decoder against pyModeS and the real recordings."""

from __future__ import annotations

import csv
import gzip
import io
import json
from collections import Counter
from pathlib import Path

import numpy as np
import pyModeS as pms
import pytest

from stratowatch.ingest import _modes_core as core
from stratowatch.ingest.base import CollectingSink, ReadContext, read_file, sniff_format
from stratowatch.ingest.modes import ModeSReader, parse_line, sniff
from stratowatch.model import MeasurementKind

REPO_ROOT = next(p for p in Path(__file__).resolve().parents if (p / "pyproject.toml").exists())
ADSB = REPO_ROOT.parent / "shared" / "data" / "adsb"
needs_data = pytest.mark.skipif(not ADSB.is_dir(), reason=f"real ADS-B samples absent ({ADSB})")

# Textbook frames (The 1090 MHz Riddle): an even/odd airborne position pair of 40621D,
# an identification of 4840D6 and an airborne velocity of 485020.
EVEN = "8D40621D58C382D690C8AC2863A7"
ODD = "8D40621D58C386435CC412692AD6"
IDENT = "8D4840D6202CC371C32CE0576098"
VELOCITY = "8D485020994409940838175B284F"


def _read(text: str, **ctx: object) -> tuple[CollectingSink, object]:
    sink = CollectingSink()
    reader = ModeSReader(clock=lambda: 1_700_000_000.0)
    stats = reader.read(io.BytesIO(text.encode()), ReadContext("t", **ctx), sink)  # type: ignore[arg-type]
    return sink, stats


def _with_crc(frame56: bytes) -> str:
    """A 112-bit frame with a correct CRC for 11 given bytes."""
    m = np.zeros((1, 14), dtype=np.uint8)
    m[0, :11] = np.frombuffer(frame56, np.uint8)
    rem = int(core.crc_remainders(m, np.array([True]))[0])
    return (frame56 + rem.to_bytes(3, "big")).hex().upper()


def test_cpr_pair_decodes_to_the_textbook_position() -> None:
    sink, stats = _read(f"1.0,{EVEN}\n2.0,{ODD}\n")
    assert stats.messages["adsb_position_pending"] == 1  # the first frame has no partner yet
    (obs,) = sink.observations
    assert obs.kind is MeasurementKind.GEODETIC
    assert obs.identity == "icao:40621D"
    assert obs.time_s == 2.0
    ref = pms.decode([EVEN, ODD], timestamps=[1.0, 2.0])[1]
    assert obs.value[0] == pytest.approx(ref["latitude"], abs=1e-9)
    assert obs.value[1] == pytest.approx(ref["longitude"], abs=1e-9)
    # the newest frame is odd: the odd-parity latitude of the worked example
    assert obs.value[0] == pytest.approx(52.26578, abs=1e-5)
    assert obs.value[1] == pytest.approx(3.93891, abs=1e-5)
    assert obs.value[2] == pytest.approx(38000 * 0.3048)
    assert obs.sigma == (core.DEFAULT_SIGMA_H_M, core.DEFAULT_SIGMA_V_M)
    assert obs.source is not None and obs.source.position == 2


def test_pair_too_far_apart_in_time_is_not_combined() -> None:
    sink, stats = _read(f"1.0,{EVEN}\n30.0,{ODD}\n")
    assert sink.observations == []
    assert stats.messages["adsb_position_pending"] == 2


def test_receiver_reference_resolves_single_frames() -> None:
    sink, _ = _read(f"1.0,{EVEN}\n", reference_lat_deg=52.0, reference_lon_deg=4.0)
    (obs,) = sink.observations
    ref = pms.decode(EVEN, reference=(52.0, 4.0))
    assert obs.value[:2] == pytest.approx((ref["latitude"], ref["longitude"]), abs=1e-9)


def test_identification_velocity_and_category_attach_to_positions() -> None:
    # 40621D identifies itself as a balloon (TC 1..4 set B, category 2 = lighter than air)
    me = bytearray.fromhex(IDENT[8:22])
    me[0] = (3 << 3) | 2  # TC 3 (set B), category 2
    ident = _with_crc(bytes.fromhex("8D40621D") + bytes(me))
    vel = _with_crc(bytes.fromhex("8D40621D") + bytes.fromhex(VELOCITY[8:22]))
    sink, stats = _read(f"0.5,{ident}\n0.8,{vel}\n1.0,{EVEN}\n2.0,{ODD}\n")
    assert stats.messages["adsb_identification"] == 1
    assert stats.messages["adsb_velocity"] == 1
    (obs,) = sink.observations
    assert obs.category == "B2"
    assert obs.callsign == "KLM1023"
    ref = pms.decode(VELOCITY)
    assert obs.velocity_enu_mps is not None
    ve, vn, vu = obs.velocity_enu_mps
    assert np.hypot(ve, vn) / core.KT_TO_MPS == pytest.approx(ref["groundspeed"], abs=0.5)
    assert np.degrees(np.arctan2(ve, vn)) % 360 == pytest.approx(ref["track"], abs=1e-6)
    assert vu / core.FPM_TO_MPS == pytest.approx(ref["vertical_rate"])


def test_old_velocity_is_not_attached() -> None:
    vel = _with_crc(bytes.fromhex("8D40621D") + bytes.fromhex(VELOCITY[8:22]))
    sink, _ = _read(f"-20,{vel}\n1.0,{EVEN}\n2.0,{ODD}\n")
    assert sink.observations[0].velocity_enu_mps is None


def test_crc_failure_is_counted_and_quarantined() -> None:
    bad = EVEN[:10] + ("0" if EVEN[10] != "0" else "1") + EVEN[11:]
    sink, stats = _read(f"1.0,{bad}\n")
    assert stats.crc_failures == 1
    (q,) = sink.quarantined
    assert q.reason == "CRC-24 check failed"
    assert q.raw == f"1.0,{bad}".encode()
    assert q.source.position == 1


def test_bad_lines_are_quarantined_with_reasons_and_everything_is_accounted() -> None:
    text = "\n".join(
        [
            "*8D40621D58C382D690C8AC2863A7;",  # good AVR
            "*8D40621D58C382D690C8AC2863;",  # 26 digits
            "ZZ40621D58C382D690C8AC2863A7",  # not hex
            "*4840D6202CC371C32CE0576098AA;",  # DF9: unknown
            "*8D4840D6202CC3;",  # DF17 in 56 bits
            '{"timestamp": 1.0}',
            "{not json",
            "",
            "@0000000000008D4840D6202CC371C32CE0576098;",
        ]
    )
    sink, stats = _read(text)
    reasons = Counter(q.reason.split(":")[0] for q in sink.quarantined)
    assert reasons == {
        "frame has 26 hex digits, expected 14 or 28": 1,
        "not hexadecimal": 1,
        "unknown downlink format DF9": 1,
        "DF17 frame must be 112 bits": 1,
        "JSON line has no 'frame' string": 1,
        "not valid JSON": 1,
    }
    assert stats.units == 8  # the blank line is not a unit
    assert stats.accounted == stats.units
    assert stats.messages["adsb_identification"] == 1


def test_line_layouts() -> None:
    assert parse_line(b'1457996400,"8D406B909945DE10000405999BE4","406B90",19') == (
        b"8D406B909945DE10000405999BE4", 1457996400.0, None)  # fmt: skip
    assert parse_line(b"\xef\xbb\xbf1495353600,4D010D,A00015B7C26E1370AA00005DD34A")[:2] == (
        b"A00015B7C26E1370AA00005DD34A", 1495353600.0)  # fmt: skip
    assert parse_line(b'{"timestamp":5.5,"frame":"8f39"}') == (b"8f39", 5.5, None)
    assert parse_line(b"12.5 8D406B909945DE10000405999BE4")[:2] == (
        b"8D406B909945DE10000405999BE4", 12.5)  # fmt: skip
    assert sniff(b"*8D406B909945DE10000405999BE4;\n")
    assert sniff(gzip.compress(b'{"timestamp": 1, "frame": "8d406b909945de10000405999be4"}\n'))
    assert not sniff(b"MSG,3,1,1,4CA2D6,1,2026/11/26\n")


def test_crc_and_altitude_agree_with_pymodes_on_random_frames() -> None:
    rng = np.random.default_rng(7)
    body = rng.integers(0, 256, size=(300, 11), dtype=np.uint8)
    body[:, 0] = 0x8D
    body[:, 4] = (11 << 3) | (body[:, 4] & 7)  # airborne position, barometric
    hexes = []
    for k, row in enumerate(body):
        frame = _with_crc(bytes(row))
        if k % 3 == 0:  # corrupt a third of them
            frame = frame[:20] + ("0" if frame[20] != "0" else "F") + frame[21:]
        hexes.append(frame)
    fm = core.hex_to_frames([h.encode() for h in hexes])
    rem = core.crc_remainders(fm.frames, fm.long)
    alt = core.altitude12_ft(core.me_bits(core._me(fm.frames), 9, 20))
    for k, h in enumerate(hexes):
        ref = pms.decode(h)
        assert (rem[k] == 0) == bool(ref["crc_valid"]), h
        if ref.get("altitude") is None:
            assert np.isnan(alt[k]), h
        else:
            assert alt[k] == ref["altitude"], h


def test_gillham_altitudes_agree_with_pymodes() -> None:
    codes = np.arange(4096)
    codes = codes[((codes >> 4) & 1) == 0]  # Q = 0: Gillham
    ours = core.gillham_altitude_ft(codes)
    checked = 0
    for c, a in zip(codes.tolist(), ours.tolist(), strict=True):
        me = bytearray(7)
        me[0] = 11 << 3
        me[1] = c >> 4
        me[2] = (c & 0xF) << 4
        ref = pms.decode(_with_crc(bytes.fromhex("8D40621D") + bytes(me))).get("altitude")
        if ref is None:
            assert np.isnan(a) or c == 0
        else:
            assert a == ref
            checked += 1
    assert checked > 1000


# ---------------------------------------------------------------- golden tests on real data


@needs_data
def test_pymodes_sample_matches_pymodes_decode() -> None:
    path = ADSB / "pymodes_sample_data_adsb.csv"
    rows = list(csv.reader(path.open()))
    tc_counts = Counter(int(r[3]) for r in rows)
    sink, stats = read_file(path, "modes")
    assert stats.units == len(rows) == 2000
    assert stats.messages["adsb_identification"] == tc_counts[4]
    assert stats.messages["adsb_velocity"] == tc_counts[19]
    assert stats.observations + stats.messages["adsb_position_pending"] == tc_counts[11]
    assert stats.observations > 900
    assert not sink.quarantined
    worst = 0.0
    for obs in sink.observations:
        assert obs.source is not None
        hexmsg = rows[obs.source.position - 1][1]
        ref = pms.decode(hexmsg, reference=(52.31, 4.76))  # EHAM
        worst = max(worst, abs(ref["latitude"] - obs.value[0]), abs(ref["longitude"] - obs.value[1]))
        assert obs.value[2] == pytest.approx(ref["altitude"] * 0.3048)
        assert obs.identity == "icao:406B90"
        assert obs.callsign in (None, "EZY85MH")
    assert worst < 1e-9
    first = sink.observations[0]
    assert first.value[0] == pytest.approx(51.14, abs=0.01)
    assert first.value[1] == pytest.approx(7.25, abs=0.02)
    assert sink.observations[-1].callsign == "EZY85MH"


@needs_data
@pytest.mark.parametrize("name", ["pymodes_sample_data_commb_df20.csv", "pymodes_sample_data_commb_df21.csv"])
def test_commb_samples_are_counted_messages(name: str) -> None:
    sink, stats = read_file(ADSB / name, "modes")
    df = 20 if "df20" in name else 21
    kind = "modes_commb_altitude" if df == 20 else "modes_commb_identity"
    assert stats.units == 5000
    assert stats.messages == {kind: 5000}
    assert sink.observations == [] and sink.quarantined == []


@needs_data
def test_rs1090_recording_matches_the_shipped_decodes() -> None:
    path = ADSB / "traffic_rs1090_full_flight_short.jsonl.gz"
    assert sniff_format(path.read_bytes()[:4096]) == "modes"
    with gzip.open(path) as f:
        rows = [json.loads(line) for line in f]
    ctx = ReadContext(str(path), sensor_id="rx1", reference_lat_deg=49.0097, reference_lon_deg=2.5479)
    sink, stats = read_file(path, "modes", ctx)
    assert stats.units == len(rows) == 57793
    assert stats.accounted == stats.units
    assert stats.crc_failures == 0 and not sink.quarantined
    with_pos = [r for r in rows if r.get("df") == "17" and "latitude" in r]
    assert stats.observations == len(with_pos) == 8324
    by_df = Counter(r["df"] for r in rows)
    assert stats.messages["modes_altitude_reply"] == by_df["4"]
    assert stats.messages["modes_identity_reply"] == by_df["5"]
    assert stats.messages["modes_acas_short"] == by_df["0"]
    assert stats.messages["modes_acas_long"] == by_df["16"]
    assert stats.messages["modes_commb_altitude"] == by_df["20"]
    assert stats.messages["modes_commb_identity"] == by_df["21"]
    lat = np.array([o.value[0] for o in sink.observations])
    lon = np.array([o.value[1] for o in sink.observations])
    pos = [o.source.position - 1 for o in sink.observations if o.source is not None]
    assert np.abs(lat - [rows[i]["latitude"] for i in pos]).max() < 1e-6
    assert np.abs(lon - [rows[i]["longitude"] for i in pos]).max() < 1e-6
    airborne = [(o, rows[i]) for o, i in zip(sink.observations, pos, strict=True) if "altitude" in rows[i]]
    assert len(airborne) > 6000
    assert all(o.value[2] == pytest.approx(r["altitude"] * 0.3048) for o, r in airborne)
    surface = [o for o in sink.observations if o.kind is MeasurementKind.GROUND_2D]
    assert len(surface) == sum(1 for r in with_pos if r.get("bds") == "06")
    assert {o.callsign for o in sink.observations} <= {None, "AFR34ZG"}
    assert {o.identity for o in sink.observations} == {"icao:393322"}
    assert all(o.sensor_id == "rx1" for o in sink.observations)


@needs_data
def test_columnar_path_equals_row_path_and_chunking_does_not_matter() -> None:
    path = ADSB / "traffic_rs1090_full_flight_short.jsonl.gz"
    data = gzip.decompress(path.read_bytes())[:2_000_000]
    ctx = ReadContext("rs1090", reference_lat_deg=49.0097, reference_lon_deg=2.5479)
    batch, _ = ModeSReader().read_batch(data, ctx)
    sink = CollectingSink()
    ModeSReader(chunk_bytes=4096).read(io.BytesIO(data), ctx, sink)
    assert len(batch) == len(sink.observations) > 100
    rows = np.array([o.value[:2] for o in sink.observations])
    assert np.array_equal(batch.value[:, :2], rows)
    assert np.array_equal(batch.obs_index, [o.source.position for o in sink.observations if o.source])
    assert np.array_equal(batch.time_s, [o.time_s for o in sink.observations])


def test_gzip_input_and_truncated_gzip() -> None:
    text = "".join(f"{k}.0,{EVEN if k % 2 else ODD}\n" for k in range(200)).encode()
    whole = gzip.compress(text)
    sink = CollectingSink()
    stats = ModeSReader().read(io.BytesIO(whole), ReadContext("gz"), sink)
    assert stats.units == 200 and stats.observations == 199 and not sink.quarantined
    sink = CollectingSink()
    stats = ModeSReader().read(io.BytesIO(whole[: len(whole) // 2]), ReadContext("gz"), sink)
    assert stats.accounted == stats.units
    # the line cut by the truncation, then the gzip failure itself
    assert [q.reason.split(":")[0] for q in sink.quarantined][-1] == "gzip data corrupt or truncated"
    assert len(sink.quarantined) <= 2
    assert sink.quarantined[-1].source.position > max(
        o.source.position for o in sink.observations if o.source
    )
    assert stats.observations > 10


@needs_data
def test_bulk_fast_path_equals_line_by_line_parsing() -> None:
    with (ADSB / "pymodes_sample_data_adsb.csv").open() as f:
        lines = [line.rstrip("\n") for line in f][:600]
    fast, s_fast = _read("\n".join(lines) + "\n")
    slow, s_slow = _read("\n".join([*lines, "junk that forces the per-line parser"]) + "\n")
    assert [(o.time_s, o.value, o.source) for o in fast.observations] == [
        (o.time_s, o.value, o.source) for o in slow.observations
    ]
    assert s_fast.messages == s_slow.messages  # type: ignore[attr-defined]
    assert len(slow.quarantined) == 1 and not fast.quarantined


@pytest.mark.parametrize(
    ("nacv", "sigma"), [(0, core.DEFAULT_VELOCITY_SIGMA_MPS), (1, 5.0), (2, 1.5), (4, 0.15)]
)
def test_velocity_sigma_from_nacv(nacv: int, sigma: float) -> None:
    me = bytearray.fromhex(VELOCITY[8:22])
    me[1] = (me[1] & ~0x38) | (nacv << 3)  # ME bits 11-13
    vel = _with_crc(bytes.fromhex("8D40621D") + bytes(me))
    assert pms.decode(vel).get("nac_v") == nacv
    sink, _ = _read(f"0.8,{vel}\n1.0,{EVEN}\n2.0,{ODD}\n")
    assert sink.observations[0].velocity_sigma_mps == pytest.approx(sigma)
