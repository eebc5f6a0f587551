"""KML / KMZ / CSV flight tracks: read_flight and the 'kml' ingest reader."""

from __future__ import annotations

import io
import zipfile
from pathlib import Path

import numpy as np
import pytest

from stratowatch.ingest.base import ReadContext, read_file, sniff_format
from stratowatch.ingest.kml import FlightFormatError, KmlReader, read_flight
from stratowatch.model import MeasurementKind

REPO_ROOT = next(p for p in Path(__file__).resolve().parents if (p / "pyproject.toml").exists())
TRACKS = REPO_ROOT.parent / "shared" / "data" / "balloon_tracks"
needs_data = pytest.mark.skipif(not TRACKS.exists(), reason=f"shared flight data absent ({TRACKS})")

SONDE_PLACEMARK = """<Placemark><name>Packet: #{n}</name><description>Serial: S1234567
UTC Time: 02/01/23 {hms}

Altitude: {alt} m
Velocity: Vertical: 5.0 m/s
Velocity: Horizontal: 10.0 m/s
Heading: 90.0º
</description><Point><coordinates>{lon},{lat},{alt}</coordinates></Point></Placemark>"""

KML = """<?xml version="1.0" encoding="UTF-8"?>
<kml xmlns="http://www.opengis.net/kml/2.2" xmlns:gx="http://www.google.com/kml/ext/2.2">
<Document><name>Launch: test</name><Document><name>Sonde: S1234567</name><Folder>
{placemarks}
<Placemark><name>Altitude</name><LineString><coordinates>10,45,100 10.1,45,600</coordinates>
</LineString></Placemark>
</Folder></Document></Document></kml>"""


def _kml(placemarks: list[str]) -> str:
    return KML.format(placemarks="\n".join(placemarks))


def _sonde_points() -> list[str]:
    return [
        SONDE_PLACEMARK.format(n=0, hms="12:00:00", alt=100.0, lon=10.0, lat=45.0),
        SONDE_PLACEMARK.format(n=2, hms="12:00:40", alt=300.0, lon=10.00508, lat=45.0),
        SONDE_PLACEMARK.format(n=1, hms="12:00:20", alt=200.0, lon=10.00254, lat=45.0),
    ]


def test_reads_sonde2kml_placemarks_sorted_by_time(tmp_path: Path) -> None:
    path = tmp_path / "f.kml"
    path.write_text(_kml(_sonde_points()), encoding="utf-8")
    f = read_flight(path)
    assert f.serial == "S1234567" and f.name == "Launch: test" and len(f) == 3
    assert f.time_s.tolist() == [1675252800.0, 1675252820.0, 1675252840.0]  # 2023-02-01 12:00Z
    np.testing.assert_allclose(f.alt_m, [100.0, 200.0, 300.0])
    np.testing.assert_allclose(f.lon_deg, [10.0, 10.00254, 10.00508])
    np.testing.assert_allclose(f.stated_heading_deg, 90.0)
    np.testing.assert_allclose(f.stated_horizontal_mps, 10.0)


def test_kmz_and_gx_track(tmp_path: Path) -> None:
    track = """<Placemark><gx:Track><when>2023-02-01T12:00:00Z</when><when>2023-02-01T12:01:00Z</when>
    <gx:coord>-100 40 1000</gx:coord><gx:coord>-99.99 40.01 1300</gx:coord></gx:Track></Placemark>"""
    buf = io.BytesIO()
    with zipfile.ZipFile(buf, "w") as z:
        z.writestr("doc.kml", _kml([track]))
    path = tmp_path / "t.kmz"
    path.write_bytes(buf.getvalue())
    f = read_flight(path)
    assert len(f) == 2 and f.time_s[1] - f.time_s[0] == 60.0
    np.testing.assert_allclose(f.lat_deg, [40.0, 40.01])
    assert np.isnan(f.stated_heading_deg).all()


def test_csv_flight(tmp_path: Path) -> None:
    path = tmp_path / "f.csv"
    path.write_text("time_utc,lat,lon,alt_m\n2023-02-01T12:00:20Z,45,10,200\n1675252800,45,10,100\n")
    f = read_flight(path)
    assert f.time_s.tolist() == [1675252800.0, 1675252820.0]
    bad = tmp_path / "bad.csv"
    bad.write_text("time_utc,lat,lon,alt_m\n2023-02-01T12:00:00Z,95,10,100\n")
    with pytest.raises(FlightFormatError, match=r"bad\.csv:2: field 'lat': out of range"):
        read_flight(bad)


def test_errors_name_the_file(tmp_path: Path) -> None:
    broken = tmp_path / "broken.kml"
    broken.write_text("<kml><Document>")
    with pytest.raises(FlightFormatError, match=r"broken\.kml: not well-formed KML"):
        read_flight(broken)
    empty = tmp_path / "empty.kml"
    empty.write_text(_kml([]))
    with pytest.raises(FlightFormatError, match=r"empty\.kml: no timed points"):
        read_flight(empty)
    bad = tmp_path / "bad.kml"
    bad.write_text(_kml([SONDE_PLACEMARK.format(n=0, hms="12:00:00", alt=1, lon="x", lat=45)]))
    with pytest.raises(FlightFormatError, match=r"bad\.kml: placemark 1: field 'coordinates lon'"):
        read_flight(bad)


def test_reader_accounts_for_every_placemark(tmp_path: Path) -> None:
    placemarks = [
        *_sonde_points(),
        SONDE_PLACEMARK.format(n=9, hms="12:01:00", alt=400, lon="abc", lat=45),
        "<Placemark><name>just a label</name></Placemark>",
    ]
    path = tmp_path / "f.kml"
    path.write_text(_kml(placemarks))
    sink, stats = read_file(path, "kml")
    assert stats.units == 6 and stats.accounted == 6
    assert stats.observations == 3 and len(sink.observations) == 3
    assert stats.messages == {"kml_untimed_geometry": 1, "kml_no_geometry": 1}
    assert stats.quarantined == {"not a number": 1}
    assert sink.quarantined[0].field == "coordinates lon" and sink.quarantined[0].source.position == 4
    o = sink.observations[0]
    assert o.kind == MeasurementKind.GEODETIC and o.identity == "sonde:S1234567"
    assert o.sensor_id == "radiosonde" and o.sigma == (10.0, 20.0)
    assert o.value == (45.0, 10.0, 100.0)
    assert o.velocity_enu_mps == pytest.approx((10.0, 0.0, 5.0))  # heading 90: eastward
    assert o.source is not None and o.source.position == 1
    # a sensor named by the context wins
    with path.open("rb") as fh:
        from stratowatch.ingest.base import CollectingSink

        s2 = CollectingSink()
        KmlReader().read(fh, ReadContext(source=str(path), sensor_id="oak-rx"), s2)
    assert s2.observations[0].sensor_id == "oak-rx"


def test_sniffing(tmp_path: Path) -> None:
    assert sniff_format(_kml([]).encode()) == "kml"
    buf = io.BytesIO()
    with zipfile.ZipFile(buf, "w") as z:
        z.writestr("doc.kml", _kml([]))
    assert sniff_format(buf.getvalue()[:4096]) == "kml"
    other = io.BytesIO()
    with zipfile.ZipFile(other, "w") as z:
        z.writestr("data.csv", "a,b\n")
    assert sniff_format(other.getvalue()[:4096]) != "kml"


@needs_data
def test_real_radiosonde_kmz() -> None:
    paths = sorted(TRACKS.glob("*.kmz"))
    assert len(paths) == 4
    for path in paths:
        f = read_flight(path)
        assert 49 <= len(f) <= 101, path.name
        assert f.serial.startswith("U2")
        assert f.lat_deg[0] == pytest.approx(37.74, abs=0.01)
        assert f.lon_deg[0] == pytest.approx(-122.22, abs=0.015)
        assert 28800.0 <= f.alt_m.max() <= 33510.0
        assert np.all(np.diff(f.time_s) > 0)
        sink, stats = read_file(path, "kml")
        assert stats.accounted == stats.units and not stats.quarantined
        assert stats.observations == len(f)
        assert {o.identity for o in sink.observations} == {f"sonde:{f.serial}"}
    first = read_flight(paths[0])
    assert first.serial == "U2450615" and len(first) == 78
    assert first.time_s[0] == 1673910453.0  # 2023-01-16 23:07:33Z
    assert first.alt_m.max() == 33507.0
