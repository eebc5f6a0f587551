"""Cones, probability maps, region arrival and the output writers."""

from __future__ import annotations

import csv
import json
import math
import xml.etree.ElementTree as ET

import numpy as np
import pytest

from stratowatch.geo import EARTH_RADIUS_M
from stratowatch.prediction import Prediction, Region, cones, probability_map, region_arrival
from stratowatch.prediction.output import cone_lead_indices, to_geojson, write_csv, write_kml

CHI2_2DOF_90 = -2.0 * math.log(0.1)  # 90% quantile of chi-square with 2 degrees of freedom


def gaussian_prediction(
    n: int,
    sigma_e_m: float,
    sigma_n_m: float,
    lat0: float = 45.0,
    lon0: float = 10.0,
    times: int = 3,
    seed: int = 0,
) -> Prediction:
    rng = np.random.default_rng(seed)
    e = rng.normal(0.0, sigma_e_m, (n, times)) * np.arange(times)
    nn = rng.normal(0.0, sigma_n_m, (n, times)) * np.arange(times)
    lat = lat0 + np.degrees(nn / EARTH_RADIUS_M)
    lon = lon0 + np.degrees(e / (EARTH_RADIUS_M * np.cos(np.radians(lat0))))
    lon = (lon + 180.0) % 360.0 - 180.0
    return Prediction(
        time_s=3600.0 * np.arange(times),
        lat_deg=lat,
        lon_deg=lon,
        alt_m=np.full((n, times), 18000.0),
        status=np.zeros(n, dtype=np.int8),
        end_time_s=np.full(n, np.nan),
        burst_time_s=np.full(n, np.nan),
    )


def test_cones_hold_their_probability_of_fresh_draws_and_match_the_gaussian_size() -> None:
    pred = gaussian_prediction(4000, 30e3, 10e3)
    c50, c90 = cones(pred, (0.5, 0.9))
    fresh = gaussian_prediction(4000, 30e3, 10e3, seed=99)
    for cone, p in ((c50, 0.5), (c90, 0.9)):
        inside = cone.contains(fresh.lat_deg, fresh.lon_deg)
        assert inside[:, 1:].mean() == pytest.approx(p, abs=0.02)
    major, minor = c90.semi_axes_m()
    scale = math.sqrt(CHI2_2DOF_90)
    assert major[2] == pytest.approx(scale * 60e3, rel=0.04)
    assert minor[2] == pytest.approx(scale * 20e3, rel=0.04)
    # time 0: all members at one point -> a tiny ring around it
    assert major[0] < 10.0
    ring_lat, ring_lon = c90.lat_deg[2], c90.lon_deg[2]
    assert ring_lat[0] == ring_lat[-1] and ring_lon[0] == ring_lon[-1]
    # counter-clockwise (positive signed area in lon/lat)
    area = 0.5 * np.sum(ring_lon[:-1] * ring_lat[1:] - ring_lon[1:] * ring_lat[:-1])
    assert area > 0


def test_cone_across_the_antimeridian_stays_continuous() -> None:
    pred = gaussian_prediction(2000, 50e3, 50e3, lat0=60.0, lon0=179.9)
    (c90,) = cones(pred, (0.9,))
    ring = c90.lon_deg[2]
    assert np.all(np.abs(np.diff(ring)) < 1.0)  # no jump of 360 between vertices
    assert ring.min() < 180.0 < ring.max()  # continuous through +180
    inside = c90.contains(pred.lat_deg, pred.lon_deg)
    assert inside.shape == pred.lat_deg.shape and inside[:, 2].mean() == pytest.approx(0.9, abs=0.01)


def test_probability_map_counts_each_member_once_per_cell() -> None:
    pred = gaussian_prediction(100, 0.0, 0.0)  # all members sit still at one point
    pm = probability_map(pred, cell_deg=0.5)
    assert pm.probability.max() == pytest.approx(1.0)
    assert pm.probability.sum() == pytest.approx(1.0)


def test_region_polygon_even_odd_and_antimeridian() -> None:
    square = Region.polygon("sq", [0, 0, 10, 10], [0, 10, 10, 0])
    assert list(square.contains([5, 5, 15, -1], [5, 11, 5, 5])) == [True, False, False, False]
    # a ring with a hole-like notch (even-odd): C shape
    c_shape = Region.polygon("c", [0, 0, 3, 3, 1, 1, 2, 2, 3, 3, 4, 4], [0, 4, 4, 3, 3, 1, 1, 3, 3, 4, 4, 0])
    assert list(c_shape.contains([0.5, 1.5, 3.5], [2, 2, 2])) == [True, False, True]
    dateline = Region.polygon("dl", [50, 50, 55, 55], [175, -175, -175, 175])
    assert list(dateline.contains([52, 52, 52], [179.5, -178.0, 170.0])) == [True, True, False]
    circle = Region.circle("c", 45.0, 10.0, 100e3)
    assert list(circle.contains([45.0, 45.5, 46.0], [10.0, 10.0, 10.0])) == [True, True, False]
    with pytest.raises(ValueError, match="3 vertices"):
        Region.polygon("bad", [0, 1], [0, 1])


def test_region_arrival_probability_and_entry_times() -> None:
    # members move north at 1 degree per hour from different longitudes
    n, times = 10, 11
    lat = np.broadcast_to(np.arange(times, dtype=float), (n, times)).copy()
    lon = np.broadcast_to(np.arange(n, dtype=float)[:, None], (n, times)).copy()
    lat[5:] += 0.0
    pred = Prediction(
        time_s=3600.0 * np.arange(times),
        lat_deg=lat,
        lon_deg=lon,
        alt_m=np.zeros((n, times)),
        status=np.zeros(n, dtype=np.int8),
        end_time_s=np.full(n, np.nan),
        burst_time_s=np.full(n, np.nan),
    )
    box = Region.polygon("box", [4.5, 4.5, 20, 20], [-0.5, 3.5, 3.5, -0.5])  # members 0..3
    (arr,) = region_arrival(pred, [box], substeps=4)
    assert arr.probability == pytest.approx(0.4) and arr.members_entering == 4
    assert arr.earliest_time_s == pytest.approx(4.5 * 3600.0, abs=1.0)  # found between samples
    assert arr.median_time_s == pytest.approx(4.5 * 3600.0, abs=1.0)
    (miss,) = region_arrival(pred, [Region.circle("far", -40.0, 0.0, 1000.0)])
    assert miss.probability == 0.0 and math.isnan(miss.earliest_time_s)


def test_outputs_geojson_csv_kml(tmp_path) -> None:
    pred = gaussian_prediction(200, 20e3, 20e3, times=13)
    pred = Prediction(
        **{**{f: getattr(pred, f) for f in pred.__dataclass_fields__}, "time_s": 1800.0 * np.arange(13)}
    )
    idx = cone_lead_indices(pred, every_h=2.0)
    assert list(idx) == [4, 8, 12]
    cone_list = cones(pred, (0.5, 0.9), time_index=idx)
    doc = to_geojson(pred, cone_list)
    json.dumps(doc)
    polys = [f for f in doc["features"] if f["properties"]["kind"] == "cone"]
    assert len(polys) == 6
    ring = polys[0]["geometry"]["coordinates"][0]
    assert ring[0] == ring[-1] and len(ring) == 49
    kinds = {f["properties"]["kind"] for f in doc["features"]}
    assert {"median_path", "deterministic_path"} <= kinds
    rows = write_csv(tmp_path / "p.csv", pred)
    with (tmp_path / "p.csv").open() as f:
        data = list(csv.DictReader(f))
    assert rows == len(data) == 200 * 13
    assert data[0]["member"] == "0" and data[0]["time_utc"] == "1970-01-01T00:00:00Z"
    assert float(data[14]["lat"]) == pytest.approx(pred.lat_deg[1, 1], abs=1e-6)
    write_kml(tmp_path / "p.kml", pred, cone_list)
    root = ET.parse(tmp_path / "p.kml").getroot()
    ns = {"k": "http://www.opengis.net/kml/2.2"}
    assert len(root.findall(".//k:Polygon", ns)) == 6
    assert len(root.findall(".//k:LineString", ns)) == 2


def test_geojson_splits_cones_at_the_antimeridian() -> None:
    pred = gaussian_prediction(2000, 80e3, 40e3, lat0=50.0, lon0=179.5)
    doc = to_geojson(pred, cones(pred, (0.9,), time_index=[2]))
    (cone,) = [f for f in doc["features"] if f["properties"]["kind"] == "cone"]
    assert cone["geometry"]["type"] == "MultiPolygon"
    west, east = (np.array(p[0]) for p in cone["geometry"]["coordinates"])
    assert west[:, 0].min() > 170.0 and west[:, 0].max() == 180.0
    assert east[:, 0].min() == -180.0 and east[:, 0].max() < -170.0
    for part in (west, east):
        assert np.array_equal(part[0], part[-1])
        assert np.all(np.abs(part[:, 0]) <= 180.0)
    # the pieces share the cut: the same latitudes at +180 and -180
    cut_w = np.unique(west[west[:, 0] == 180.0, 1])
    cut_e = np.unique(east[east[:, 0] == -180.0, 1])
    np.testing.assert_allclose(cut_w, cut_e)
    unsplit = to_geojson(pred, cones(pred, (0.9,), time_index=[0]))
    assert (
        next(f for f in unsplit["features"] if f["properties"]["kind"] == "cone")["geometry"]["type"]
        == "Polygon"
    )
