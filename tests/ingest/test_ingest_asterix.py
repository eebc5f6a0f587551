"""ASTERIX reader: golden decodes of the real Croatia Control samples, the bulk CAT048 decoder
cross-checked against asterix-decoder, time anchoring, height-less plots, framing errors, pcap."""

from __future__ import annotations

import io
import json
import math
import struct
from datetime import UTC, date, datetime
from pathlib import Path

import asterix
import numpy as np
import pytest

from stratowatch.geo import EARTH_RADIUS_M, haversine_m
from stratowatch.ingest._cat048 import decode_cat048, encode_cat048
from stratowatch.ingest.asterix import (
    NOMINAL_ALT_M,
    AsterixReader,
    DecoderWorker,
    TimeAnchor,
    frame_blocks,
    sniff,
)
from stratowatch.ingest.base import CollectingSink, ReadContext, read_file, sniff_format
from stratowatch.ingest.registry import registry_from_dict
from stratowatch.model import MeasurementKind

REPO_ROOT = Path(__file__).resolve().parents[2]
DATA = REPO_ROOT.parent / "shared" / "data" / "asterix"
needs_data = pytest.mark.skipif(not DATA.is_dir(), reason=f"real ASTERIX samples not found at {DATA}")
DAY = date(2024, 1, 2)
DAY0 = datetime(2024, 1, 2, tzinfo=UTC).timestamp()


def read_bytes(data: bytes, reader: AsterixReader | None = None, day: date | None = DAY) -> tuple:
    sink = CollectingSink()
    stats = (reader or AsterixReader()).read(io.BytesIO(data), ReadContext("mem", date_utc=day), sink)
    assert stats.accounted == stats.units
    return sink, stats


def blocks_of(data: bytes) -> tuple[list[int], list[int]]:
    fr = frame_blocks(data)
    return [s + 3 for _, s, _ in fr], [e for _, _, e in fr]


def random_cat048(n: int, seed: int = 1, **over: object) -> tuple[dict, bytes]:
    rng = np.random.default_rng(seed)
    fields = dict(
        sac=25,
        sic=201,
        tod_s=np.sort(rng.uniform(0, 86000, n)),
        typ=rng.integers(1, 8, n),
        rho_nm=rng.uniform(0, 250, n),
        theta_deg=rng.uniform(0, 360, n),
        mode3a=np.where(rng.random(n) < 0.8, rng.integers(0, 4096, n), -1),
        flight_level=np.where(rng.random(n) < 0.7, np.round(rng.uniform(-10, 600, n) * 4) / 4, np.nan),
        icao=np.where(rng.random(n) < 0.5, rng.integers(0, 1 << 24, n), -1),
        callsign=np.where(rng.random(n) < 0.4, "ABC123", ""),
        track_number=np.where(rng.random(n) < 0.5, rng.integers(0, 4096, n), -1),
        groundspeed_nm_s=np.where(rng.random(n) < 0.3, rng.uniform(0, 0.2, n), np.nan),
        heading_deg=rng.uniform(0, 360, n),
    )
    fields.update(over)
    return fields, encode_cat048(**fields)


# ---------------------------------------------------------------------------------------------
# Golden tests on the real samples.


@needs_data
def test_golden_cat048_sample() -> None:
    sink, stats = read_file(DATA / "cat048.raw", "asterix", ReadContext("f", date_utc=DAY))
    assert stats.units == 1 and stats.observations == 1
    (o,) = sink.observations
    assert o.sensor_id == "asterix:25/201"
    assert o.kind == MeasurementKind.POLAR_HEIGHT
    rng, az, alt = o.value
    assert rng == pytest.approx(197.68359375 * 1852.0)
    assert az == pytest.approx(340.13671875)
    assert alt == pytest.approx(330 * 100 * 0.3048)  # FL330
    assert o.identity == "icao:3C660C" and o.callsign == "DLH65A"
    assert o.time_s == pytest.approx(DAY0 + 27354.6015625)
    assert o.source is not None and o.source.position == 3  # the record follows the block header


@needs_data
def test_golden_cat062_pcap_matches_reference_decode() -> None:
    expected = [
        json.loads(line) for line in (DATA / "expected_cat_062_065_json.txt").read_text().splitlines()
    ]
    tracks = [e for e in expected if e["cat"] == 62]
    sink, stats = read_file(DATA / "cat_062_065.pcap", "asterix", ReadContext("f"))
    assert stats.units == 3 and stats.observations == 2
    assert dict(stats.messages) == {"asterix_cat065_end_of_batch": 1}
    assert len(sink.observations) == len(tracks) == 2
    pcap = (DATA / "cat_062_065.pcap").read_bytes()
    capture_s = struct.unpack_from("<I", pcap, 24)[0]
    for o, e in zip(sink.observations, tracks, strict=True):
        c = e["CAT062"]
        assert o.kind == MeasurementKind.GEODETIC
        assert o.sensor_id == "asterix:25/100"
        assert o.value[0] == pytest.approx(c["I105"]["Lat"], abs=1e-6)
        assert o.value[1] == pytest.approx(c["I105"]["Lon"], abs=1e-6)
        assert o.value[2] == pytest.approx(c["I130"]["Alt"] * 0.3048)
        assert o.velocity_enu_mps is not None
        assert o.velocity_enu_mps[:2] == pytest.approx((c["I185"]["Vx"], c["I185"]["Vy"]))
        assert o.identity == f"icao:{c['I380']['ADR']['ADR']}"
        assert o.callsign == c["I380"]["ID"]["ACID"].strip()
        # Anchored to the capture's day, nearest the packet time.
        tod = c["I070"]["ToT"]
        assert o.time_s % 86400 == pytest.approx(tod)
        assert abs(o.time_s - capture_s) < 43200
    assert [o.identity for o in sink.observations] == ["icao:4CA7A8", "icao:4CAC7F"]


@needs_data
def test_golden_cat062_raw_track_without_address_gets_track_identity() -> None:
    sink, stats = read_file(DATA / "cat062cat065.raw", "asterix", ReadContext("f", date_utc=DAY))
    assert stats.observations == 2 and stats.messages["asterix_cat065_end_of_batch"] == 1
    a, b = sink.observations
    assert a.identity == "track:25/100:4980" and a.callsign is None
    assert a.value == pytest.approx((44.73441302776337, 13.0415278673172, 43300 * 0.3048))
    assert b.identity == "icao:3C0A55" and b.callsign == "SXD4723"


@needs_data
def test_golden_cat034_and_cat021() -> None:
    _, stats = read_file(DATA / "cat034.raw", "asterix", ReadContext("f", date_utc=DAY))
    assert dict(stats.messages) == {"asterix_cat034_sector_crossing": 1}
    sink, stats = read_file(DATA / "cat21_re.ast", "asterix", ReadContext("f", date_utc=DAY))
    assert stats.observations == 2
    a, b = sink.observations
    # No altitude in these surface reports: 2-D, ICAO identity, emitter category.
    assert a.kind == MeasurementKind.GROUND_2D
    assert a.value == pytest.approx((61.47532939910889, -7.87869930267334))
    assert (a.identity, b.identity) == ("icao:000001", "icao:000002")
    assert b.category == "ecat:21"
    assert a.time_s == pytest.approx(DAY0 + 28802.921875)


@needs_data
def test_sniff_detects_all_samples() -> None:
    for name in ("cat048.raw", "cat034.raw", "cat21_re.ast", "cat062cat065.raw", "cat_062_065.pcap"):
        assert sniff_format((DATA / name).read_bytes()[:4096]) == "asterix", name


@needs_data
def test_corrupt_cat062_block_that_crashes_the_library_is_quarantined() -> None:
    raw = bytearray((DATA / "cat062cat065.raw").read_bytes())
    raw[163] = 0xC0  # a non-ASCII byte in I390 DEP/DST: asterix-decoder segfaults on it
    sink, stats = read_bytes(bytes(raw))
    assert stats.quarantined and sum(stats.quarantined.values()) == 1
    assert "asterix-decoder crashed" in next(iter(stats.quarantined))
    assert stats.messages["asterix_cat065_end_of_batch"] == 1  # the feed goes on after the crash
    assert sink.quarantined[0].raw == bytes(raw[:183])


# ---------------------------------------------------------------------------------------------
# Bulk CAT048 decoder.


def test_bulk_decoder_matches_asterix_decoder_on_synthetic_stream() -> None:
    f, data = random_cat048(3000)
    starts, ends = blocks_of(data)
    recs = decode_cat048(data, starts, ends)
    ref = asterix.parse(data, verbose=False)
    assert len(recs) == len(ref) == 3000
    assert (recs.error == 0).all()
    rho = np.array([r["I040"]["RHO"]["val"] for r in ref])
    theta = np.array([r["I040"]["THETA"]["val"] for r in ref])
    tod = np.array([r["I140"]["ToD"]["val"] for r in ref])
    np.testing.assert_allclose(recs.rho_nm, rho, atol=1e-12)
    np.testing.assert_allclose(recs.theta_deg, theta, atol=1e-9)
    np.testing.assert_allclose(recs.tod_s, tod, atol=1e-12)
    fl_ref = np.array([r["I090"]["FL"]["val"] if "I090" in r else np.nan for r in ref])
    np.testing.assert_array_equal(recs.flight_level, fl_ref)
    np.testing.assert_array_equal(recs.flight_level, f["flight_level"])
    icao_ref = np.array([int(r["I220"]["ACAddr"]["val"], 16) if "I220" in r else -1 for r in ref])
    np.testing.assert_array_equal(recs.icao, icao_ref)
    m3a_ref = [r["I070"]["Mode3A"]["val"] if "I070" in r else None for r in ref]
    assert [f"{m:04o}" if m >= 0 else None for m in recs.mode3a.tolist()] == m3a_ref
    cs_ref = [r["I240"]["TId"]["val"] if "I240" in r else "" for r in ref]
    assert [c.decode() for c in recs.callsign] == [c.ljust(8) if c else "" for c in cs_ref]
    tn_ref = [r["I161"]["Tn"]["val"] if "I161" in r else -1 for r in ref]
    assert recs.track_number.tolist() == tn_ref
    gs_ref = np.array([r["I200"]["CGS"]["val"] / 3600.0 if "I200" in r else np.nan for r in ref])
    np.testing.assert_allclose(recs.groundspeed_nm_s, gs_ref, atol=1e-12)
    assert recs.typ.tolist() == [r["I020"]["TYP"]["val"] for r in ref]


@needs_data
def test_bulk_decoder_matches_library_on_real_record_with_i250() -> None:
    data = (DATA / "cat048.raw").read_bytes()
    recs = decode_cat048(data, [3], [len(data)])
    ref = asterix.parse(data, verbose=False)[0]
    assert recs.length[0] == ref["len"] == 45  # I250 (repetitive) and I230 framed right
    assert recs.track_number[0] == ref["I161"]["Tn"]["val"] == 3563
    assert recs.groundspeed_nm_s[0] * 3600 == pytest.approx(ref["I200"]["CGS"]["val"])


def test_truncated_record_is_quarantined_and_rest_of_stream_decodes() -> None:
    _, good = random_cat048(40, seed=2, records_per_block=10)
    bad = bytearray(good)
    # Cut the first block short by two octets but keep its stated length consistent.
    n = (bad[1] << 8) | bad[2]
    bad = bad[: n - 2] + bad[n:]
    bad[1:3] = (n - 2).to_bytes(2, "big")
    _, stats = read_bytes(bytes(bad), AsterixReader(registry_with_site()))
    assert stats.quarantined["CAT048 record runs past the end of its data block"] == 1
    assert stats.units == 40  # 9 good records + 1 truncated unit in block 1, 30 after
    assert stats.observations == 39 - sum(stats.messages.values())


def test_garbage_between_blocks_is_quarantined_and_resynchronised() -> None:
    _, data = random_cat048(30, seed=3, records_per_block=10)
    cut = (data[1] << 8) | data[2]
    noisy = data[:cut] + b"\xde\xad\xbe\xef\x00\x11" + data[cut:]
    sink, stats = read_bytes(noisy, AsterixReader(registry_with_site()))
    assert stats.quarantined["cannot frame ASTERIX data block"] == 1
    assert sink.quarantined[0].raw == b"\xde\xad\xbe\xef\x00\x11"
    assert stats.units == 31


def registry_with_site():
    return registry_from_dict(
        {
            "sensor": [
                {
                    "id": "radar-a",
                    "owner": "HR",
                    "kind": "radar",
                    "lat_deg": 45.0,
                    "lon_deg": 15.0,
                    "alt_m": 500.0,
                    "sigma_range_m": 50.0,
                    "sigma_azimuth_deg": 0.1,
                    "releasable_to": ["HR", "NATO"],
                    "aliases": ["asterix:25/201"],
                }
            ]
        }
    )


def test_plots_with_and_without_height() -> None:
    tod = np.array([100.0, 101.0, 102.0])
    data = encode_cat048(
        sac=25,
        sic=201,
        tod_s=tod,
        typ=[2, 1, 2],
        rho_nm=[100.0, 100.0, 50.0],
        theta_deg=[90.0, 90.0, 0.0],
        mode3a=[0o1200, -1, 0o7000],
        flight_level=[350.0, np.nan, np.nan],
    )
    # Unregistered radar: the plot with height is usable, the height-less ones need the site.
    sink, stats = read_bytes(data)
    assert stats.observations == 1
    assert sum(stats.quarantined.values()) == 2
    # Registered: sensor id, label and owner from the registry; ground points for the rest.
    sink, stats = read_bytes(data, AsterixReader(registry_with_site()))
    assert stats.observations == 3
    o1, o2, o3 = sink.observations
    assert o1.sensor_id == "radar-a" and o1.originator == "HR"
    assert o1.releasable_to == frozenset({"HR", "NATO"})
    assert o1.kind == MeasurementKind.POLAR_HEIGHT and o1.sigma == (50.0, 0.1, 100.0)  # sensor sigma_v_m
    assert o2.kind == MeasurementKind.GROUND_2D
    slant = 100.0 * 1852.0
    rs, rt = EARTH_RADIUS_M + 500.0, EARTH_RADIUS_M + NOMINAL_ALT_M
    ground = EARTH_RADIUS_M * math.acos((rs * rs + rt * rt - slant * slant) / (2 * rs * rt))
    assert float(haversine_m(45.0, 15.0, o2.value[0], o2.value[1])) == pytest.approx(ground, rel=1e-6)
    assert o2.value[1] > 15.0 and o2.value[0] == pytest.approx(45.0, abs=0.05)  # due east

    def ground_m(h: float) -> float:
        rt = EARTH_RADIUS_M + h
        return EARTH_RADIUS_M * math.acos((rs * rs + rt * rt - slant * slant) / (2 * rs * rt))

    # Range sigma inflated by the unknown altitude (0..20 km, uniform), vs the cross-range sigma.
    radial = math.hypot(50.0, (ground_m(0.0) - ground_m(20_000.0)) / math.sqrt(12.0))
    cross = ground * math.radians(0.1)
    assert o2.sigma[0] == pytest.approx(max(radial, cross), rel=1e-6)
    assert o2.sigma[0] > 50.0
    assert o3.value[0] > 45.0  # due north


def test_simulated_test_and_fixed_transponder_reports_are_counted() -> None:
    data = bytearray(
        encode_cat048(
            sac=1,
            sic=2,
            tod_s=[1.0, 2.0],
            typ=[2, 2],
            rho_nm=[10, 10],
            theta_deg=[0, 0],
            flight_level=[100, 100],
        )
    )
    # I020 is the octet after FSPEC (1) + I010 (2) + I140 (3); set SIM in record 1, RAB in 2.
    rec_len = 1 + 2 + 3 + 1 + 4 + 2
    bad = bytearray(data)
    bad[3 + 6] |= 0x10
    bad[3 + rec_len + 6] |= 0x02
    _, stats = read_bytes(bytes(bad))
    assert dict(stats.messages) == {"asterix_cat048_simulated": 1, "asterix_cat048_field_monitor": 1}
    assert stats.observations == 0


def test_midnight_rollover_with_stated_date() -> None:
    tod = [86390.0, 86399.0, 2.0, 86399.5, 5.0]  # one late record from before midnight
    data = encode_cat048(sac=1, sic=1, tod_s=tod, typ=2, rho_nm=10.0, theta_deg=0.0, flight_level=100.0)
    sink, _ = read_bytes(data)
    t = [o.time_s - DAY0 for o in sink.observations]
    assert t == pytest.approx([86390.0, 86399.0, 86402.0, 86399.5, 86405.0])


def test_time_anchor_keeps_state_across_calls() -> None:
    a = TimeAnchor(DAY)
    nan = np.full(2, np.nan)
    first = a.resolve(np.array([86000.0, 86399.0]), nan)
    second = a.resolve(np.array([1.0, 10.0]), nan)
    assert first - DAY0 == pytest.approx([86000.0, 86399.0])
    assert second - DAY0 == pytest.approx([86401.0, 86410.0])


def _pcap(payloads: list[bytes], t0: float) -> bytes:
    out = [struct.pack("<IHHiIII", 0xA1B2C3D4, 2, 4, 0, 0, 65535, 1)]
    for i, p in enumerate(payloads):
        udp = struct.pack(">HHHH", 4000, 8600, 8 + len(p), 0) + p
        ip = (
            struct.pack(
                ">BBHHHBBH4s4s", 0x45, 0, 20 + len(udp), 0, 0, 64, 17, 0, b"\x0a\0\0\1", b"\xe0\0\0\1"
            )
            + udp
        )
        eth = b"\x01\x00\x5e\x00\x00\x01" + b"\x00\x11\x22\x33\x44\x55" + b"\x08\x00" + ip
        t = t0 + i
        out.append(struct.pack("<IIII", int(t), int((t % 1) * 1e6), len(eth), len(eth)) + eth)
    # A non-UDP packet (ARP) as well.
    arp = b"\xff" * 6 + b"\x00" * 6 + b"\x08\x06" + b"\x00" * 28
    out.append(struct.pack("<IIII", int(t0), 0, len(arp), len(arp)) + arp)
    return b"".join(out)


def _pcapng(payloads: list[bytes], t0: float) -> bytes:
    def block(code: int, body: bytes) -> bytes:
        body += b"\0" * ((4 - len(body) % 4) % 4)
        n = 12 + len(body)
        return struct.pack("<II", code, n) + body + struct.pack("<I", n)

    out = [
        block(0x0A0D0D0A, struct.pack("<IHHq", 0x1A2B3C4D, 1, 0, -1)),
        block(1, struct.pack("<HHI", 101, 0, 65535)),
    ]
    for i, p in enumerate(payloads):
        udp = struct.pack(">HHHH", 4000, 8600, 8 + len(p), 0) + p
        ip = (
            struct.pack(
                ">BBHHHBBH4s4s", 0x45, 0, 20 + len(udp), 0, 0, 64, 17, 0, b"\x0a\0\0\1", b"\xe0\0\0\1"
            )
            + udp
        )
        ts = int((t0 + i) * 1e6)
        out.append(block(6, struct.pack("<IIIII", 0, ts >> 32, ts & 0xFFFFFFFF, len(ip), len(ip)) + ip))
    return b"".join(out)


@pytest.mark.parametrize("wrap", [_pcap, _pcapng])
def test_capture_files_anchor_to_packet_time(wrap) -> None:
    capture = datetime(2023, 2, 4, 23, 59, 58, tzinfo=UTC).timestamp()
    p1 = encode_cat048(
        sac=1, sic=1, tod_s=[86398.0, 86399.0], typ=2, rho_nm=10.0, theta_deg=0.0, flight_level=100.0
    )
    p2 = encode_cat048(sac=1, sic=1, tod_s=[0.5], typ=2, rho_nm=10.0, theta_deg=0.0, flight_level=100.0)
    data = wrap([p1, p2], capture)
    assert sniff(data[:4096])
    sink, stats = read_bytes(data, day=None)
    assert stats.observations == 3
    assert [o.time_s - capture for o in sink.observations] == pytest.approx([0.0, 1.0, 2.5])
    assert [o.source.position for o in sink.observations] == [1, 1, 2]  # packet numbers
    if wrap is _pcap:
        assert stats.messages["pcap_packet_not_asterix_udp"] == 1


def test_decoder_worker_survives_a_crashing_decoder() -> None:
    crashing = (
        "import os, pickle, struct, sys\n"
        "out = os.fdopen(os.dup(1), 'wb'); out.write(b'RDY!'); out.flush()\n"
        "while True:\n"
        "    h = sys.stdin.buffer.read(4)\n"
        "    if len(h) < 4: break\n"
        "    d = sys.stdin.buffer.read(struct.unpack('>I', h)[0])\n"
        "    if d[:1] == b'\\xff': os._exit(11)\n"
        "    b = pickle.dumps(('ok', [{'len': len(d)}]))\n"
        "    out.write(struct.pack('>I', len(b)) + b); out.flush()\n"
    )
    w = DecoderWorker(timeout_s=5.0, source=crashing)
    try:
        assert w.parse(b"\x01abc") == ("ok", [{"len": 4}])
        status, why = w.parse(b"\xffboom")
        assert status == "crash" and "exit status" in why
        assert w.parse(b"\x02xy") == ("ok", [{"len": 3}])
        assert w.restarts == 1
    finally:
        w.close()


def test_sniff_rejects_text_and_accepts_raw_blocks() -> None:
    _, data = random_cat048(5, seed=4)
    assert sniff(data)
    assert not sniff(b"time_s,sensor_id,x_m,y_m,z_m,sigma_m,sigma_z_m\n1,a,0,0,0,1,1\n")
    assert not sniff(b"0,1,2,3\n")
