"""Generic geodetic CSV reader."""

from __future__ import annotations

import io

from stratowatch.ingest.base import CollectingSink, ReadContext, sniff_format
from stratowatch.ingest.geodetic_csv import GeodeticCsvReader
from stratowatch.ingest.registry import registry_from_dict
from stratowatch.model import MeasurementKind

CSV = b"""\xef\xbb\xbftime_utc,lat,lon,alt_m,sigma_h_m,sigma_v_m,sensor_id,identity,callsign
2023-02-04T18:39:00Z,33.5,-78.9,18500,200,300,partner-x,track:US:17,
1675535950,33.6,-78.8,18510,200,300,partner-x,,
2023-02-04T18:39:20Z,95.0,-78.8,18510,200,300,partner-x,,
2023-02-04 18:39:30,33.7,-78.7,18520,200,300,,icao:A1B2C3,UAL12
"""


def test_geodetic_rows() -> None:
    assert sniff_format(CSV) == "geodetic-csv"
    reg = registry_from_dict({"sensor": [{"id": "partner-x", "owner": "US", "releasable_to": ["US"]}]})
    sink = CollectingSink()
    stats = GeodeticCsvReader(reg).read(io.BytesIO(CSV), ReadContext("g.csv", sensor_id="ops"), sink)
    assert stats.units == 4 and stats.accounted == 4
    a, b, c = sink.observations
    assert (
        a.kind == MeasurementKind.GEODETIC and a.value == (33.5, -78.9, 18500.0) and a.sigma == (200.0, 300.0)
    )
    assert a.identity == "track:US:17" and a.originator == "US" and a.releasable_to == frozenset({"US"})
    assert a.time_s == 1675535940.0 and b.time_s == 1675535950.0 and b.identity is None
    assert (
        c.time_s == 1675535970.0
        and c.sensor_id == "ops"
        and c.identity == "icao:A1B2C3"
        and c.callsign == "UAL12"
    )
    assert stats.quarantined == {"geodetic CSV: lat: out of range": 1}
    assert sink.quarantined[0].source.position == 4
