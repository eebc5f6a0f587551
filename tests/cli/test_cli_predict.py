"""``stratowatch predict`` end to end: analytic field, real GFS, radiosonde flights, user errors."""

from __future__ import annotations

import csv
import json
import xml.etree.ElementTree as ET
from pathlib import Path

import numpy as np
import pytest
from click.testing import CliRunner

from stratowatch.cli import cli

REPO_ROOT = next(p for p in Path(__file__).resolve().parents if (p / "pyproject.toml").exists())
DATA = REPO_ROOT.parent / "shared" / "data"
GFS = DATA / "wind" / "gfs_northamerica_2010102612_1deg.nc"
FLIGHTS = sorted((DATA / "balloon_tracks").glob("*.kmz")) if (DATA / "balloon_tracks").is_dir() else []


def run(*args: str):
    return CliRunner().invoke(cli, ["predict", *args])


def read_rows(path: Path) -> list[dict[str, str]]:
    with path.open() as f:
        return list(csv.DictReader(f))


def test_analytic_field_csv_with_timing(tmp_path) -> None:
    out = tmp_path / "p.csv"
    res = run(
        "--lat",
        "45",
        "--lon",
        "-100",
        "--alt-m",
        "18000",
        "--time",
        "2023-02-02T00:00:00Z",
        "--hours",
        "24",
        "--members",
        "50",
        "-o",
        str(out),
        "--timing",
    )
    assert res.exit_code == 0, res.output
    assert "analytic test field" in res.stderr
    timing = json.loads(res.stderr.strip().splitlines()[-1])
    assert timing["load_s"] >= 0 and timing["integrate_s"] > 0 and timing["members"] == 50
    rows = read_rows(out)
    assert len(rows) == 50 * (24 * 6 + 1)
    assert rows[0] == {
        "member": "0",
        "time_utc": "2023-02-02T00:00:00Z",
        "lat": "45.000000",
        "lon": "-100.000000",
        "alt_m": "18000.0",
    }
    last = [r for r in rows if r["member"] == "0"][-1]
    assert last["time_utc"] == "2023-02-03T00:00:00Z"
    assert float(last["lon"]) != -100.0
    members = {r["member"] for r in rows}
    assert members == {str(i) for i in range(50)}


def test_geojson_with_cones_and_region(tmp_path) -> None:
    out = tmp_path / "p.geojson"
    res = run(
        "--lat",
        "45",
        "--lon",
        "-100",
        "--alt-m",
        "11000",
        "--time",
        "1675296000",
        "--hours",
        "12",
        "--members",
        "200",
        "--region",
        "big=45,-90,2000",
        "--cone-every-h",
        "6",
        "-o",
        str(out),
    )
    assert res.exit_code == 0, res.output
    doc = json.loads(out.read_text())
    cones_ = [f for f in doc["features"] if f["properties"]["kind"] == "cone"]
    assert sorted({f["properties"]["lead_h"] for f in cones_}) == [6.0, 12.0]
    assert {f["properties"]["probability"] for f in cones_} == {0.5, 0.9}
    arrival = next(f for f in doc["features"] if f["properties"]["kind"] == "region_arrival")
    assert arrival["properties"]["probability"] == 1.0  # starts 2000 km-radius circle's inside
    assert "region big: probability 1.000" in res.stderr


def test_kml_output_and_backward(tmp_path) -> None:
    out = tmp_path / "p.kml"
    res = run(
        "--lat",
        "40",
        "--lon",
        "10",
        "--alt-m",
        "15000",
        "--time",
        "1675296000",
        "--hours",
        "12",
        "--members",
        "20",
        "--backward",
        "-o",
        str(out),
    )
    assert res.exit_code == 0, res.output
    assert "backward" in res.stderr
    root = ET.parse(out).getroot()
    assert len(root.findall(".//{http://www.opengis.net/kml/2.2}Polygon")) == 4


def test_unknown_altitude_from_velocity(tmp_path) -> None:
    out = tmp_path / "p.csv"
    res = run(
        "--lat",
        "45",
        "--lon",
        "-100",
        "--velocity",
        "20",
        "0",
        "--time",
        "1675296000",
        "--hours",
        "2",
        "--members",
        "100",
        "-o",
        str(out),
    )
    assert res.exit_code == 0, res.output
    assert "altitude unknown: drawn from the drift match" in res.stderr
    alts = np.array([float(r["alt_m"]) for r in read_rows(out) if r["time_utc"] == "2023-02-02T00:00:00Z"])
    assert alts.std() > 100.0


@pytest.mark.parametrize(
    ("args", "message"),
    [
        (["--lat", "45", "--lon", "0", "--alt-m", "1000", "-o", "x.csv"], "give --lat, --lon and --time"),
        (
            ["--lat", "45", "--lon", "0", "--alt-m", "1000", "--time", "yesterday", "-o", "x.csv"],
            "not an ISO 8601",
        ),
        (
            ["--lat", "45", "--lon", "0", "--alt-m", "1000", "--time", "0", "-o", "x.txt"],
            "must end in .geojson",
        ),
        (["--lat", "95", "--lon", "0", "--alt-m", "1000", "--time", "0", "-o", "x.csv"], "within [-90, 90]"),
        (["--lat", "45", "--lon", "0", "--time", "0", "-o", "x.csv"], "give --alt-m, or --velocity"),
        (
            ["--lat", "4", "--lon", "0", "--alt-m", "1", "--time", "0", "--region", "x=1,2", "-o", "x.csv"],
            "NAME=LAT",
        ),
        (
            [
                "--winds",
                "nonexistent.nc",
                "--lat",
                "4",
                "--lon",
                "0",
                "--alt-m",
                "1",
                "--time",
                "0",
                "-o",
                "x.csv",
            ],
            "nonexistent.nc",
        ),
    ],
)
def test_user_errors_are_one_line_exit_2(tmp_path, args, message) -> None:
    res = CliRunner().invoke(
        cli, ["predict", *[a if not a.startswith("x.") else str(tmp_path / a) for a in args]]
    )
    assert res.exit_code == 2, res.output
    assert message in res.stderr
    assert "Traceback" not in res.output


@pytest.mark.shared_data
@pytest.mark.skipif(not GFS.exists(), reason=f"needs {GFS}")
def test_real_gfs_field(tmp_path) -> None:
    out = tmp_path / "gfs.geojson"
    res = run(
        "--winds",
        str(GFS),
        "--lat",
        "45",
        "--lon",
        "-140",
        "--alt-m",
        "18000",
        "--time",
        "2010-10-26T12:00:00Z",
        "--hours",
        "24",
        "--members",
        "100",
        "-o",
        str(out),
    )
    assert res.exit_code == 0, res.output
    assert "one analysis time" in res.stderr
    doc = json.loads(out.read_text())
    median = next(f for f in doc["features"] if f["properties"]["kind"] == "median_path")
    end_lon = median["geometry"]["coordinates"][-1][0]
    assert -140.0 < end_lon < -100.0  # carried east by the westerlies
    outside = run(
        "--winds",
        str(GFS),
        "--lat",
        "45",
        "--lon",
        "0",
        "--alt-m",
        "18000",
        "--time",
        "2010-10-26T12:00:00Z",
        "-o",
        str(tmp_path / "x.csv"),
    )
    assert outside.exit_code == 2 and "start point" in outside.stderr and "longitude" in outside.stderr


@pytest.mark.shared_data
@pytest.mark.skipif(len(FLIGHTS) < 2, reason="needs the radiosonde KMZ flights in shared/data/balloon_tracks")
def test_next_flight_from_previous_flight_winds(tmp_path) -> None:
    out = tmp_path / "next.csv"
    res = run(
        "--winds",
        str(FLIGHTS[0]),
        "--from-flight",
        str(FLIGHTS[1]),
        "--burst-alt-m",
        "30000",
        "--hours",
        "4",
        "--members",
        "20",
        "--output-every-s",
        "60",
        "-o",
        str(out),
    )
    assert res.exit_code == 0, res.output
    assert "ascent 5." in res.stderr and "landed" in res.stderr
    rows = [r for r in read_rows(out) if r["member"] == "0"]
    assert float(rows[0]["lat"]) == pytest.approx(37.7, abs=0.2)
    assert max(float(r["alt_m"]) for r in rows) == pytest.approx(30000.0, abs=400.0)  # sampled every 60 s
    assert float(rows[-1]["alt_m"]) == 0.0


def _sounding(path: Path, when: str, wind_from_deg: float, speed: float) -> Path:
    header = (
        "time,longitude,latitude,pressure_hPa,geopotential height_m,temperature_C,dew point temperature_C,"
        "ice point temperature_C,relative humidity_%,humidity wrt ice_%,mixing ratio_g/kg,"
        "wind direction_degree,wind speed_m/s\n"
    )
    levels = [
        (1000, 110, 15),
        (850, 1460, 5),
        (500, 5570, -20),
        (250, 10360, -50),
        (100, 16180, -60),
        (50, 20580, -58),
    ]
    rows = "".join(
        f"{when},-97.44,35.18,{p},{h},{t},{t - 5},{t - 5},50,50,1.0,{wind_from_deg:.0f},{speed}\n"
        for p, h, t in levels
    )
    path.write_text(header + rows)
    return path


def test_several_wind_files_after_one_winds_option_are_merged_in_time(tmp_path) -> None:
    a = _sounding(tmp_path / "a.csv", "2023-05-22 00:00:00", 270.0, 10.0)  # from the west: blows east
    b = _sounding(tmp_path / "b.csv", "2023-05-22 12:00:00", 180.0, 10.0)  # from the south: blows north
    out = tmp_path / "p.csv"
    res = run(
        "--winds", str(a), str(b), "--lat", "35", "--lon", "-97", "--alt-m", "12000",
        "--time", "2023-05-22T00:00:00Z", "--hours", "12", "--members", "1", "-o", str(out),
    )  # fmt: skip
    assert res.exit_code == 0, res.output
    rows = read_rows(out)
    # the wind turns linearly from east-going to north-going over the 12 hours
    dlat_km = (float(rows[-1]["lat"]) - 35.0) * 111.2
    dlon_km = (float(rows[-1]["lon"]) + 97.0) * 111.2 * np.cos(np.radians(35.0))
    assert dlat_km == pytest.approx(10.0 * 43200 / 2 / 1000, rel=0.05)
    assert dlon_km == pytest.approx(10.0 * 43200 / 2 / 1000, rel=0.05)
