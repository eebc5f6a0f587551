"""APRS reader: times, altitude, ambiguity, non-position packets, bad lines."""

from __future__ import annotations

import io
from datetime import UTC, date, datetime

import pytest

from stratowatch.ingest.aprs import AprsReader, packet_time
from stratowatch.ingest.base import CollectingSink, ReadContext, sniff_format
from stratowatch.model import MeasurementKind

LOG = b"""# aprsc 2.1.10
2023-02-04T18:39:00Z N0CALL-11>APRS,WIDE2-1,qAR,K0XYZ:/183850h4903.50N/07201.75WO090/010/A=060000 hab
1675535950 N0CALL-11>APRS,qAR,K0XYZ:!4903.50N/07201.75WO/A=060100
N0CALL-11>APRS,qAR,K0XYZ:/183910h4903.5 N/07201.7 WO
N0CALL-11>APRS:>status text here
N0CALL-11>APRS:!4903.50N/07201.75WO no time and no zulu timestamp
not an aprs line at all
2023-02-04T18:39:00Z N0CALL-11>APRS:!9903.50N/07201.75WO
"""


def read(data: bytes) -> tuple[CollectingSink, object]:
    sink = CollectingSink()
    stats = AprsReader().read(io.BytesIO(data), ReadContext("aprs.log", date_utc=date(2023, 2, 4)), sink)
    assert stats.accounted == stats.units
    return sink, stats


def test_positions_times_and_counts() -> None:
    assert sniff_format(LOG) == "aprs"
    sink, stats = read(LOG)
    assert stats.units == 8
    a, b, c = sink.observations
    t0 = datetime(2023, 2, 4, 18, 39, tzinfo=UTC).timestamp()
    # Receive-time prefix wins over the packet's own timestamp.
    assert a.time_s == t0 and b.time_s == t0 + 10
    assert a.kind == MeasurementKind.GEODETIC and a.identity == "aprs:N0CALL-11"
    assert a.value == pytest.approx((49.058333, -72.029167, 60000 * 0.3048), abs=1e-5)
    assert a.sigma == (30.0, 50.0)
    # Zulu HMS timestamp anchored to the stated date; ambiguity level 1 without altitude.
    assert c.time_s == t0 + 10 and c.kind == MeasurementKind.GROUND_2D
    assert c.sigma[0] > 30.0
    assert stats.messages == {"aprs_comment": 1, "aprs_status": 1}
    assert stats.quarantined["aprs: no receive time and no zulu packet time"] == 1
    assert (
        stats.quarantined["aprs: packet does not parse"] + stats.quarantined["aprs: unknown packet format"]
        == 2
    )


def test_packet_time_day_of_month_from_previous_month() -> None:
    t = packet_time("311200z", date(2023, 3, 1))
    assert t == datetime(2023, 1, 31, 12, tzinfo=UTC).timestamp()  # February has no 31st
    assert packet_time("281200z", date(2023, 3, 1)) == datetime(2023, 2, 28, 12, tzinfo=UTC).timestamp()
    assert packet_time("011200z", date(2023, 3, 1)) == datetime(2023, 3, 1, 12, tzinfo=UTC).timestamp()
    assert packet_time("121314/", date(2023, 3, 1)) is None  # local time: unknown zone
