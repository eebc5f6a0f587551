"""SBS / BaseStation text: fields, joins, time anchoring, quarantine and the columnar path."""

from __future__ import annotations

import datetime as dt
import io

import numpy as np
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from stratowatch.ingest import _modes_core as core
from stratowatch.ingest.base import CollectingSink, IngestStats, ReadContext
from stratowatch.ingest.sbs import SbsReader, sniff
from stratowatch.model import MeasurementKind

DAY = dt.date(2026, 11, 26)
MIDNIGHT = dt.datetime(2026, 11, 26, tzinfo=dt.UTC).timestamp()


def msg(tt: int, icao: str = "4CA2D6", time: str = "12:00:00.000", date: str = "2026/11/26", **f: str) -> str:
    fields = ["MSG", str(tt), "1", "1", icao, "1", date, time, date, time] + [""] * 12
    names = {"callsign": 10, "alt": 11, "gs": 12, "trk": 13, "lat": 14, "lon": 15, "vr": 16, "sq": 17}
    for k, v in f.items():
        fields[names[k]] = v
    return ",".join(fields)


def read(text: str, reader: SbsReader | None = None, **ctx: object) -> tuple[CollectingSink, IngestStats]:
    sink = CollectingSink()
    r = reader or SbsReader()
    stats = r.read(io.BytesIO(text.encode()), ReadContext("feed", **ctx), sink)  # type: ignore[arg-type]
    return sink, stats


def test_airborne_position_with_callsign_and_velocity() -> None:
    lines = [
        msg(1, time="12:00:00.000", callsign="BAL0ON1 "),
        msg(4, time="12:00:01.000", gs="10", trk="90", vr="-128"),
        msg(3, time="12:00:02.500", alt="60000", lat="51.50000", lon="-0.12345"),
        msg(5, time="12:00:03.000", alt="60000"),
        msg(6, time="12:00:03.000", sq="7000"),
    ]
    sink, stats = read("\r\n".join(lines) + "\r\n")
    assert stats.units == 5 and stats.accounted == 5
    assert stats.messages == {"sbs_identification": 1, "sbs_velocity": 1, "sbs_altitude": 1, "sbs_squawk": 1}
    (obs,) = sink.observations
    assert obs.kind is MeasurementKind.GEODETIC
    assert obs.value == (51.5, -0.12345, 60000 * 0.3048)
    assert obs.time_s == MIDNIGHT + 12 * 3600 + 2.5
    assert obs.identity == "icao:4CA2D6"
    assert obs.callsign == "BAL0ON1"
    assert obs.velocity_enu_mps == pytest.approx((10 * core.KT_TO_MPS, 0.0, -128 * core.FPM_TO_MPS))
    assert obs.source is not None and obs.source.position == 3


def test_velocity_of_another_aircraft_or_too_old_is_not_used() -> None:
    lines = [
        msg(4, icao="AAAAAA", time="12:00:01.000", gs="10", trk="90"),
        msg(4, icao="4CA2D6", time="11:59:00.000", gs="10", trk="90"),
        msg(3, time="12:00:02.000", alt="1000", lat="1", lon="2"),
    ]
    sink, _ = read("\n".join(lines))
    assert sink.observations[0].velocity_enu_mps is None


def test_surface_position_and_missing_position() -> None:
    lines = [msg(2, lat="49.0", lon="2.5"), msg(3, alt="35975")]  # dump1090 sends MSG,3 without a fix
    sink, stats = read("\n".join(lines))
    (obs,) = sink.observations
    assert obs.kind is MeasurementKind.GROUND_2D and obs.value == (49.0, 2.5)
    assert stats.messages["sbs_position_no_fix"] == 1


def test_undated_records_roll_over_midnight() -> None:
    lines = [
        msg(3, date="", time="23:59:59.500", alt="100", lat="1", lon="2"),
        msg(3, date="", time="00:00:00.250", alt="100", lat="1", lon="2"),
    ]
    reader = SbsReader()
    sink, _ = read(lines[0], reader, date_utc=DAY)
    sink2, _ = read(lines[1], reader, date_utc=DAY)  # the next chunk: the day carries over
    assert sink.observations[0].time_s == MIDNIGHT + 86399.5
    assert sink2.observations[0].time_s == MIDNIGHT + 86400.25


def test_bad_lines_are_quarantined_naming_the_field() -> None:
    lines = [
        msg(3, alt="1000", lat="5x.1", lon="2"),
        msg(3, alt="1000", lat="95", lon="2"),
        msg(3, icao="4CA2G6", alt="1000", lat="1", lon="2"),
        msg(9, alt="1000"),
        msg(3, time="25:00:00.0", alt="1000", lat="1", lon="2"),
        msg(3, date="2026/13/01", alt="1000", lat="1", lon="2"),
        "MSG,3,1",
        "HELLO,world",
        "STA,,5,179,400AE7,10103,2008/11/28,14:58:51.153,2008/11/28,14:58:51.153,RM",
        "AIR,,333,5,4CA4E5,27215,2008/11/28,14:53:50.594,2008/11/28,14:53:50.594",
    ]
    sink, stats = read("\n".join(lines))
    reasons = [(q.source.position, q.reason, q.field) for q in sink.quarantined]
    assert reasons == [
        (1, "field 15 (lat): not a valid value", "lat"),
        (2, "field 15/16 (lat, lon): position off the Earth", "lat"),
        (3, "field 5 (icao): not a valid value", "icao"),
        (4, "field 2 (transmission_type): not a valid value", "transmission_type"),
        (5, "field 8 (time): not a valid value", "time"),
        (6, "field 7 (date): not a valid value", "date"),
        (7, "expected 22 comma-separated fields, got 3", None),
        (8, "unknown record type 'HELLO'", None),
    ]
    assert sink.quarantined[0].raw == lines[0].encode()
    assert stats.messages == {"sbs_status": 1, "sbs_new_aircraft": 1}
    assert stats.accounted == stats.units == 10


def test_columnar_path_and_chunking_agree_with_row_path() -> None:
    rng = np.random.default_rng(3)
    lines = []
    for i in range(3000):
        icao = f"{rng.integers(0, 40):06X}"
        t = f"12:{i // 60 % 60:02d}:{i % 60:02d}.{rng.integers(0, 1000):03d}"
        kind = i % 3
        if kind == 0:
            lines.append(msg(3, icao, t, alt=str(rng.integers(0, 60000)), lat=f"{rng.uniform(-90, 90):.5f}",
                             lon=f"{rng.uniform(-180, 180):.5f}"))  # fmt: skip
        elif kind == 1:
            lines.append(
                msg(4, icao, t, gs=str(rng.integers(0, 600)), trk=f"{rng.uniform(0, 360):.1f}", vr="64")
            )
        else:
            lines.append(msg(1, icao, t, callsign=f"CS{i:04d}"))
    data = ("\n".join(lines) + "\n").encode()
    batch, _ = SbsReader().read_batch(data, ReadContext("feed"))
    sink = CollectingSink()
    SbsReader(chunk_bytes=1000).read(io.BytesIO(data), ReadContext("feed"), sink)
    assert len(batch) == len(sink.observations) == 1000
    assert np.array_equal(batch.value, np.array([o.value for o in sink.observations]))
    vel = np.array([o.velocity_enu_mps or (np.nan,) * 3 for o in sink.observations])
    assert np.array_equal(np.isnan(batch.velocity_enu_mps), np.isnan(vel))
    assert np.allclose(np.nan_to_num(batch.velocity_enu_mps), np.nan_to_num(vel))
    # each value is exactly what float() makes of the text
    for line, obs in zip((x for x in lines if x.startswith("MSG,3")), sink.observations, strict=True):
        f = line.split(",")
        assert obs.value == (float(f[14]), float(f[15]), float(f[11]) * 0.3048)


@settings(max_examples=200, deadline=None)
@given(st.floats(-1e6, 1e6, allow_nan=False).map(lambda x: round(x, 6)))
def test_numbers_parse_exactly_like_float(x: float) -> None:
    text = repr(x) if "e" not in repr(x) else f"{x:.6f}"
    sink, _ = read(msg(3, alt="100", lat="1", lon="2").replace(",100,", f",{text},", 1))
    assert sink.observations[0].value[2] == float(text) * 0.3048


def test_sniff() -> None:
    assert sniff(msg(3).encode())
    assert sniff(b"STA,,5,179,400AE7,10103,2008/11/28,14:58:51.153\n")
    assert not sniff(b"*8D406B909945DE10000405999BE4;\n")


def test_line_numbers_continue_across_reads() -> None:
    reader = SbsReader()
    first, _ = read(msg(3, alt="1", lat="1", lon="2") + "\n" + msg(5), reader)
    second, _ = read(msg(3, alt="1", lat="1", lon="3"), reader)  # e.g. the next datagram
    assert first.observations[0].source is not None and second.observations[0].source is not None
    assert (first.observations[0].source.position, second.observations[0].source.position) == (1, 3)
