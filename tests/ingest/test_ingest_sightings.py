"""Sightings reader: the three placement rules, GeoJSON, bad rows."""

from __future__ import annotations

import io
import json
import math

import pytest

from stratowatch.geo import haversine_m
from stratowatch.ingest.base import CollectingSink, ReadContext, sniff_format
from stratowatch.ingest.sightings import SightingsReader
from stratowatch.model import MeasurementKind

CSV = b"""time_utc,lat,lon,bearing_deg,elevation_deg,text,observer
2023-02-01T20:00:00Z,45.9,-112.5,,,white sphere high up,anna
2023-02-01T20:05:00Z,45.9,-112.5,90,,white sphere to the east,
2023-02-01T20:10:00Z,45.9,-112.5,180,45,at 45 degrees,
2023-02-01T20:15:00Z,north,-112.5,,,bad latitude,
"""


def read(data: bytes) -> tuple[CollectingSink, object]:
    sink = CollectingSink()
    stats = SightingsReader().read(io.BytesIO(data), ReadContext("s.csv"), sink)
    assert stats.accounted == stats.units
    return sink, stats


def test_csv_rules() -> None:
    assert sniff_format(CSV) == "sightings"
    sink, stats = read(CSV)
    a, b, c = sink.observations
    assert all(o.kind == MeasurementKind.GROUND_2D and o.category == "sighting" for o in (a, b, c))
    assert a.value == (45.9, -112.5) and a.sigma == (30_000.0,) and a.sensor_id == "sighting:anna"
    assert float(haversine_m(45.9, -112.5, *b.value)) == pytest.approx(50_000.0, rel=1e-6)
    assert b.value[1] > -112.5 and b.sigma == (40_000.0,)
    assert float(haversine_m(45.9, -112.5, *c.value)) == pytest.approx(
        18_000.0 / math.tan(math.radians(45)), rel=1e-6
    )
    assert c.value[0] < 45.9 and c.sigma == pytest.approx((9_000.0,))
    assert stats.quarantined["sightings: lat: not a number"] == 1
    assert a.time_s == 1675281600.0


def test_geojson() -> None:
    doc = {
        "type": "FeatureCollection",
        "features": [
            {
                "type": "Feature",
                "geometry": {"type": "Point", "coordinates": [-112.5, 45.9]},
                "properties": {"time_utc": "2023-02-01T20:00:00Z", "bearing_deg": 0, "text": "north"},
            },
            {
                "type": "Feature",
                "geometry": {"type": "LineString", "coordinates": [[0, 0], [1, 1]]},
                "properties": {"time_utc": "2023-02-01T20:00:00Z"},
            },
        ],
    }
    data = json.dumps(doc).encode()
    assert sniff_format(data) == "sightings"
    sink, stats = read(data)
    (o,) = sink.observations
    assert o.value[0] > 45.9 and o.sigma == (40_000.0,)
    assert stats.quarantined["sightings: geometry: not a Point"] == 1
