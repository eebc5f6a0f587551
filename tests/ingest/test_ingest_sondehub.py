"""SondeHub reader: layouts, velocity, duplicates, bad fields."""

from __future__ import annotations

import io
import json
import math

import pytest

from stratowatch.ingest.base import CollectingSink, ReadContext, sniff_format
from stratowatch.ingest.sondehub import SondeHubReader
from stratowatch.model import MeasurementKind

FRAME = {
    "serial": "U2450615",
    "datetime": "2023-01-16T23:07:17.000Z",
    "lat": 37.74,
    "lon": -122.22,
    "alt": 10234.5,
    "vel_h": 12.0,
    "vel_v": 5.1,
    "heading": 135.0,
    "type": "RS41",
    "uploader_callsign": "KM6XYZ",
}


def read(data: bytes) -> tuple[CollectingSink, object]:
    sink = CollectingSink()
    stats = SondeHubReader().read(io.BytesIO(data), ReadContext("s.json"), sink)
    assert stats.accounted == stats.units
    return sink, stats


def test_json_lines_with_duplicates_and_bad_fields() -> None:
    lines = [
        FRAME,
        {**FRAME, "uploader_callsign": "OTHER"},  # same frame from another receiver
        {**FRAME, "datetime": "2023-01-16T23:07:18.000Z", "lat": "north"},
        {**FRAME, "datetime": "2023-01-16T23:07:19.000Z", "alt": None},
    ]
    data = ("\n".join(json.dumps(x) for x in lines) + "\n{not json\n").encode()
    assert sniff_format(data) == "sondehub"
    sink, stats = read(data)
    assert stats.units == 5
    a, b = sink.observations
    assert a.identity == "sonde:U2450615" and a.kind == MeasurementKind.GEODETIC
    assert a.value == (37.74, -122.22, 10234.5) and a.category == "RS41"
    s = 12.0 / math.sqrt(2)
    assert a.velocity_enu_mps == pytest.approx((s, -s, 5.1))
    assert a.time_s == 1673910437.0
    assert b.kind == MeasurementKind.GROUND_2D  # no altitude
    assert stats.messages["sondehub_duplicate"] == 1
    assert stats.quarantined["sondehub: lat: not a number"] == 1
    assert stats.quarantined["sondehub: line is not valid JSON"] == 1


def test_array_and_archive_layouts() -> None:
    sink, _ = read(json.dumps([FRAME, {**FRAME, "datetime": "2023-01-16T23:07:20Z"}]).encode())
    assert len(sink.observations) == 2
    archive = {"U2450615": {"2023-01-16T23:07:17.000Z": {k: v for k, v in FRAME.items() if k != "serial"}}}
    sink, stats = read(json.dumps(archive).encode())
    assert stats.observations == 1 and sink.observations[0].identity == "sonde:U2450615"
