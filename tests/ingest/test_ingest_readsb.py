"""readsb / dump1090 JSON: aircraft.json snapshots and the real readsb trace_full file."""

from __future__ import annotations

import io
import json
from collections import Counter
from pathlib import Path

import numpy as np
import pytest

from stratowatch.ingest import _modes_core as core
from stratowatch.ingest.base import CollectingSink, IngestStats, ReadContext, read_file, sniff_format
from stratowatch.ingest.readsb import ReadsbReader, sniff
from stratowatch.model import MeasurementKind

REPO_ROOT = next(p for p in Path(__file__).resolve().parents if (p / "pyproject.toml").exists())
ADSB = REPO_ROOT.parent / "shared" / "data" / "adsb"
needs_data = pytest.mark.skipif(not ADSB.is_dir(), reason=f"real ADS-B samples absent ({ADSB})")


def snapshot(now: float, aircraft: list[object]) -> bytes:
    return json.dumps({"now": now, "messages": 10, "aircraft": aircraft}).encode()


def read(data: bytes, reader: ReadsbReader) -> tuple[CollectingSink, IngestStats]:
    sink = CollectingSink()
    return sink, reader.read(io.BytesIO(data), ReadContext("aircraft.json", sensor_id="rx"), sink)


BALLOON = {
    "hex": "a1b2c3", "flight": "HBAL123 ", "alt_baro": 60000, "alt_geom": 60500, "gs": 20.0,
    "track": 90.0, "baro_rate": 64, "lat": 45.0, "lon": -100.0, "seen_pos": 0.5, "seen": 0.2,
    "category": "B2", "nac_p": 9,
}  # fmt: skip


def test_aircraft_json_snapshot_and_repeated_polls() -> None:
    reader = ReadsbReader()
    first = snapshot(1000.0, [BALLOON, {"hex": "~123abc", "lat": 1.0, "lon": 2.0, "alt_baro": "ground"},
                              {"hex": "abcdef", "alt_baro": 1000}, {"hex": "xyz"}, 5])  # fmt: skip
    sink, stats = read(first, reader)
    assert stats.units == 5 and stats.accounted == 5
    assert stats.messages == {"readsb_no_position": 1}
    assert [q.field for q in sink.quarantined] == ["hex", None]
    balloon, tisb = sink.observations
    assert balloon.time_s == 999.5
    assert balloon.kind is MeasurementKind.GEODETIC
    assert balloon.value == (45.0, -100.0, 60000 * 0.3048)
    assert balloon.identity == "icao:A1B2C3" and balloon.callsign == "HBAL123" and balloon.category == "B2"
    assert balloon.sigma[0] == pytest.approx(30.0 / 2.4477, rel=1e-3)  # NACp 9: EPU < 30 m
    assert balloon.velocity_enu_mps == pytest.approx((20 * core.KT_TO_MPS, 0.0, 64 * core.FPM_TO_MPS))
    assert balloon.sensor_id == "rx"
    assert tisb.identity == "anon:123ABC" and tisb.kind is MeasurementKind.GROUND_2D
    # the next poll: same position report again, then a new one
    again = snapshot(1001.0, [dict(BALLOON, seen_pos=1.5)])
    sink2, stats2 = read(again, reader)
    assert stats2.messages == {"readsb_position_unchanged": 1} and not sink2.observations
    sink3, _ = read(snapshot(1002.0, [dict(BALLOON, seen_pos=0.1, lat=45.01)]), reader)
    assert sink3.observations[0].value[0] == 45.01


def test_old_dump1090_field_names_and_a0_category() -> None:
    ac = {"hex": "406b90", "flight": "EZY85MH ", "lat": 51.19, "lon": 6.95, "seen_pos": 1.1,
          "altitude": 36000, "vert_rate": 0, "track": 286, "speed": 495, "category": "A0"}  # fmt: skip
    sink, _ = read(snapshot(10.0, [ac]), ReadsbReader())
    (obs,) = sink.observations
    assert obs.value[2] == 36000 * 0.3048 and obs.category is None
    assert obs.velocity_enu_mps is not None
    assert np.hypot(*obs.velocity_enu_mps[:2]) == pytest.approx(495 * core.KT_TO_MPS)


def test_broken_json_is_one_quarantined_unit() -> None:
    sink, stats = read(b'{"now": 1, "aircraft": [', ReadsbReader())
    assert stats.units == 1 and stats.quarantined
    assert sink.quarantined[0].reason.startswith("not valid JSON: ")
    assert sink.quarantined[0].raw == b'{"now": 1, "aircraft": ['


def test_sniff() -> None:
    assert sniff(snapshot(1.0, []))
    assert sniff(b'{"icao":"ac671b",\n "timestamp": 1.0, "trace":[')
    assert not sniff(b'{"timestamp": 1.0, "frame": "8d"}')


@needs_data
def test_readsb_trace_full() -> None:
    path = ADSB / "traffic_readsb_trace_full_ac671b.json"
    assert sniff_format(path.read_bytes()[:4096]) == "readsb"
    doc = json.loads(path.read_text())
    sink, stats = read_file(path, "readsb")
    assert stats.units == len(doc["trace"]) == 2500
    assert stats.observations == 2500 and stats.accounted == 2500
    obs = sink.observations
    assert {o.identity for o in obs} == {"icao:AC671B"}
    lat = np.array([o.value[0] for o in obs])
    lon = np.array([o.value[1] for o in obs])
    assert lat.min() == pytest.approx(16.777359) and lat.max() == pytest.approx(47.526111)
    assert lon.min() == pytest.approx(-117.276165) and lon.max() == pytest.approx(-88.036868)
    assert obs[0].time_s == doc["timestamp"]
    assert obs[-1].time_s == pytest.approx(doc["timestamp"] + doc["trace"][-1][0])
    assert (obs[-1].time_s - obs[0].time_s) / 3600 == pytest.approx(22.7, abs=0.1)
    n_ground = sum(1 for p in doc["trace"] if p[3] == "ground")
    assert sum(1 for o in obs if o.kind is MeasurementKind.GROUND_2D) == n_ground > 0
    assert obs[0].value[2] == pytest.approx(32000 * 0.3048)
    calls = Counter(o.callsign for o in obs)
    assert calls.most_common(1)[0][0] == "DAL1812"
    assert obs[3].callsign == "DAL1812" and obs[2].callsign is None  # from the first details on
    assert obs[3].sigma[0] == pytest.approx(10.0 / 2.4477, rel=1e-3)  # nac_p 10
    # columnar path gives the same positions
    batch, _ = ReadsbReader().read_batch(path.read_bytes(), ReadContext(str(path)))
    assert np.array_equal(batch.value[:, 0], lat)
