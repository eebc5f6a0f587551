"""Benchmark plots CSV reader."""

from __future__ import annotations

import io

from stratowatch.ingest.base import CollectingSink, ReadContext, sniff_format
from stratowatch.ingest.plots import PlotsReader
from stratowatch.model import MeasurementKind

CSV = b"""time_s,sensor_id,x_m,y_m,z_m,sigma_m,sigma_z_m
0.0,r1,1000.0,2000.0,15000.0,50.0,100.0
0.0,r1,1000.0,abc,15000.0,50.0,100.0
1.0,r2,1100.0,2100.0,15010.0,-5,100.0
1.0,r2,1100.0
"""


def test_plots_rows_and_errors() -> None:
    assert sniff_format(CSV) == "plots"
    sink = CollectingSink()
    stats = PlotsReader().read(io.BytesIO(CSV), ReadContext("p.csv"), sink)
    assert stats.units == 4 and stats.accounted == 4
    (o,) = sink.observations
    assert o.kind == MeasurementKind.LOCAL_XYZ
    assert (o.time_s, o.sensor_id, o.value, o.sigma) == (0.0, "r1", (1000.0, 2000.0, 15000.0), (50.0, 100.0))
    assert o.source is not None and o.source.position == 2
    assert stats.quarantined == {
        "plots: y_m: not a number": 1,
        "plots: sigma_m: out of range": 1,
        "wrong number of fields (the header has 7)": 1,
    }
    assert [q.source.position for q in sink.quarantined] == [3, 4, 5]
    assert [q.field for q in sink.quarantined] == ["y_m", "sigma_m", None]


def test_missing_column_quarantines_rows() -> None:
    sink = CollectingSink()
    stats = PlotsReader().read(io.BytesIO(b"time_s,x_m\n1,2\n"), ReadContext("p.csv"), sink)
    assert stats.observations == 0 and stats.quarantined["plots CSV header lacks column 'sensor_id'"] == 1
