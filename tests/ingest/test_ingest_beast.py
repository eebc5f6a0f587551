"""Beast binary: framing with escapes, garbage, timestamps, and the real dump1090 recording."""

from __future__ import annotations

import datetime as dt
import io
from collections import Counter
from pathlib import Path

import pyModeS as pms
import pytest

from stratowatch.ingest.base import CollectingSink, IngestStats, ReadContext, read_file
from stratowatch.ingest.beast import BeastFrame, BeastReader, deframe, sniff
from stratowatch.ingest.modes import ModeSReader

REPO_ROOT = next(p for p in Path(__file__).resolve().parents if (p / "pyproject.toml").exists())
ADSB = REPO_ROOT.parent / "shared" / "data" / "adsb"
needs_data = pytest.mark.skipif(not ADSB.is_dir(), reason=f"real ADS-B samples absent ({ADSB})")

EVEN = "8D40621D58C382D690C8AC2863A7"
ODD = "8D40621D58C386435CC412692AD6"


def frame(hexmsg: str, counter: int, ftype: int | None = None, signal: int = 0x40) -> bytes:
    payload = bytes.fromhex(hexmsg)
    t = ftype or (0x33 if len(payload) == 14 else 0x32 if len(payload) == 7 else 0x31)
    body = counter.to_bytes(6, "big") + bytes([signal]) + payload
    return bytes([0x1A, t]) + body.replace(b"\x1a", b"\x1a\x1a")


def read(data: bytes, reader: BeastReader | None = None, **ctx: object) -> tuple[CollectingSink, IngestStats]:
    sink = CollectingSink()
    r = reader or BeastReader(clock=lambda: 1000.0)
    return sink, r.read(io.BytesIO(data), ReadContext("beast", **ctx), sink)  # type: ignore[arg-type]


def test_escaped_bytes_garbage_and_other_frame_types() -> None:
    counter = 0x1A1A00001A1A  # escapes inside the timestamp
    data = (
        b"\x00\x01garbage"
        + frame(EVEN, counter)
        + frame("2000", counter + 1)  # Mode A/C
        + frame(ODD, counter + 12_000_000, signal=0x1A)  # one second later, escaped signal byte
        + bytes([0x1A, 0x34]) + bytes(21)  # status frame
        + frame(EVEN, 7)[:9]  # truncated at the end
    )  # fmt: skip
    items, used = deframe(data)
    assert used == len(data) - 9  # the incomplete frame waits for more data
    frames = [it for it in items if isinstance(it, BeastFrame)]
    assert [f.payload.hex().upper() for f in frames if f.type == 0x33] == [EVEN, ODD]
    assert frames[0].timestamp == counter and frames[2].signal == 0x1A
    sink, stats = read(data)
    assert stats.units == 6 and stats.accounted == 6
    assert stats.messages["beast_mode_ac"] == 1 and stats.messages["beast_status"] == 1
    assert [q.reason for q in sink.quarantined] == ["bytes outside a Beast frame"] * 2
    assert sink.quarantined[0].raw == b"\x00\x01garbage"
    (obs,) = sink.observations
    ref = pms.decode([EVEN, ODD], timestamps=[0.0, 1.0])[1]
    assert obs.value[:2] == pytest.approx((ref["latitude"], ref["longitude"]), abs=1e-9)
    assert obs.time_s == pytest.approx(1001.0)  # clock at the first frame + counter difference
    assert obs.source is not None and obs.source.position == 4


def test_frames_split_across_reads_are_reassembled() -> None:
    data = b"".join(frame(h, 1 + k * 6_000_000) for k, h in enumerate([EVEN, ODD] * 20))
    whole, s1 = read(data)
    pieces, s2 = read(data, BeastReader(clock=lambda: 1000.0, chunk_bytes=7))
    assert s1.as_dict() == s2.as_dict()
    assert [o.value for o in whole.observations] == [o.value for o in pieces.observations]
    assert s1.observations == 39


def test_gps_timestamps_are_anchored_to_the_date_with_roll_over() -> None:
    def gps(seconds: int, ns: int) -> int:
        return (seconds << 30) | ns

    data = frame(EVEN, gps(86399, 500_000_000)) + frame(ODD, gps(0, 250_000_000))
    sink, _ = read(data, BeastReader(time_mode="gps"), date_utc=dt.date(2026, 11, 26))
    midnight = dt.datetime(2026, 11, 26, tzinfo=dt.UTC).timestamp()
    assert sink.observations[0].time_s == pytest.approx(midnight + 86400.25)


def test_sniff() -> None:
    assert sniff(frame(EVEN, 1) + frame(ODD, 2))
    assert not sniff(b"MSG,3,1,1")
    assert not sniff(b"\x1a\x39garbage")


@needs_data
def test_dump1090_recording_decodes_like_pymodes_and_like_the_hex_reader() -> None:
    path = ADSB / "traffic_sample_dump1090_beast.bin"
    items, used = deframe(path.read_bytes(), final=True)
    assert used == path.stat().st_size
    frames = [it for it in items if isinstance(it, BeastFrame)]
    assert len(items) == len(frames) == 239
    sink, stats = read_file(path, "beast")
    assert stats.units == 239 and stats.accounted == 239 and not sink.quarantined
    # every frame classified as pyModeS classifies it
    df_counts = Counter(pms.decode(f.payload.hex())["df"] for f in frames)
    assert stats.messages["modes_all_call_reply"] == df_counts[11]
    assert stats.messages["modes_acas_short"] == df_counts[0]
    assert stats.messages["modes_altitude_reply"] == df_counts[4]
    assert stats.messages["modes_commb_altitude"] == df_counts[20]
    assert stats.messages["modes_commb_identity"] == df_counts[21]
    n_es = sum(
        stats.messages[k] for k in stats.messages if k.startswith("adsb_") and k != "adsb_position_pending"
    )
    assert n_es + stats.observations + stats.messages["adsb_position_pending"] == df_counts[17]
    # the same frames as hex lines, timed by the Beast counter, give the same observations
    t0 = frames[0].timestamp
    lines = "".join(f"{(f.timestamp - t0) / 12e6},{f.payload.hex()}\n" for f in frames)
    hex_sink = CollectingSink()
    ModeSReader().read(io.BytesIO(lines.encode()), ReadContext("hex"), hex_sink)
    assert [o.value for o in sink.observations] == [o.value for o in hex_sink.observations]
    assert stats.observations == 3  # the first position frame has no partner yet
    # pyModeS, given a reference point near Toulouse, resolves every frame to the same place
    for obs in sink.observations:
        assert obs.source is not None
        r = pms.decode(frames[obs.source.position - 1].payload.hex(), reference=(43.6, 1.4))
        assert (obs.value[0], obs.value[1]) == pytest.approx((r["latitude"], r["longitude"]), abs=1e-9)
        assert obs.value[2] == pytest.approx(r["altitude"] * 0.3048)
    assert {o.identity for o in sink.observations} == {"icao:48520A"}
