"""Geofence loading (GeoJSON, config, airfield CSV) and the vectorised inside/crossing tests."""

from __future__ import annotations

import json
from pathlib import Path

import numpy as np
import pytest

from stratowatch.alerts.geofences import (
    GeofenceError,
    GeofenceIndex,
    airfields_from_csv,
    arrivals_payload,
    crossings,
    geofences_from_config,
    inside,
    load_border_sides,
    load_geofences,
    sample_sites_path,
    to_regions,
)
from stratowatch.geo import destination, haversine_m
from stratowatch.model import Geofence
from stratowatch.prediction.regions import Region


def _write(tmp_path: Path, doc: object, name: str = "fences.geojson") -> Path:
    p = tmp_path / name
    p.write_text(json.dumps(doc), encoding="utf-8")
    return p


def test_sample_sites_are_shipped_with_sources() -> None:
    gs = load_geofences(sample_sites_path())
    by_id = {g.geofence_id: g for g in gs}
    assert 6 <= len(gs) <= 12
    assert all(g.source for g in gs), "every sample site names its public source"
    malmstrom = by_id["mt-malmstrom-afb"]
    assert malmstrom.kind == "circle"
    assert malmstrom.coordinates[0] == pytest.approx((47.507, -111.187), abs=0.02)
    assert malmstrom.severity == "critical"
    assert by_id["mt-malmstrom-missile-field"].kind == "polygon"
    border = by_id["border-can-usa-49n"]
    assert border.kind == "line"
    assert border.coordinates[0][1] < -123 and border.coordinates[-1][1] == pytest.approx(-95.153)
    assert {lat for lat, _ in border.coordinates} == {49.0}
    assert load_border_sides(sample_sites_path()) == {"border-can-usa-49n": ("CAN", "USA")}


def test_sample_sites_contain_the_bases() -> None:
    gs = load_geofences(sample_sites_path())
    ids = [g.geofence_id for g in gs]
    # Malmstrom AFB itself, a point in the missile field near Lewistown, Minot, and Lethbridge (nothing)
    hit = inside(gs, [47.507, 47.1, 48.416, 49.69], [-111.187, -109.6, -101.358, -112.84], 18_000.0)
    named = [{ids[j] for j in np.flatnonzero(row)} for row in hit]
    assert named == [
        {"mt-malmstrom-afb", "mt-malmstrom-missile-field"},
        {"mt-malmstrom-missile-field"},
        {"nd-minot-afb"},
        set(),
    ]


def test_circle_radius_on_the_sphere_and_altitude_band() -> None:
    g = Geofence(
        "c", "C", "circle", ((47.5, -111.2),), radius_m=15_000.0, min_alt_m=1000.0, max_alt_m=20_000.0
    )
    bearings = np.arange(0.0, 360.0, 30.0)
    lat_in, lon_in = destination(47.5, -111.2, bearings, 14_900.0)
    lat_out, lon_out = destination(47.5, -111.2, bearings, 15_100.0)
    assert inside([g], lat_in, lon_in, 10_000.0).all()
    assert not inside([g], lat_out, lon_out, 10_000.0).any()
    # altitude band: below, inside, above, NaN
    res = inside([g], [47.5] * 4, [-111.2] * 4, [500.0, 1000.0, 20_001.0, np.nan])
    assert res[:, 0].tolist() == [False, True, False, False]


def test_index_matches_reference_on_random_points() -> None:
    rng = np.random.default_rng(7)
    # a concave "U" polygon and circles of several sizes
    u_ring = ((45, -110), (45, -100), (50, -100), (50, -102), (46, -102), (46, -108), (50, -108), (50, -110))
    fences = [
        Geofence("u", "U", "polygon", tuple((float(a), float(b)) for a, b in u_ring)),
        Geofence("c1", "C1", "circle", ((48.0, -105.0),), radius_m=50_000.0),
        Geofence("c2", "C2", "circle", ((60.0, -140.0),), radius_m=300_000.0),
        Geofence("line", "L", "line", ((40.0, -120.0), (55.0, -90.0))),
    ]
    lat = rng.uniform(40, 65, 20_000)
    lon = rng.uniform(-150, -95, 20_000)
    got = inside(fences, lat, lon, 0.0)
    ref_u = Region.polygon("u", [p[0] for p in u_ring], [p[1] for p in u_ring]).contains(lat, lon)
    ref_c1 = haversine_m(48.0, -105.0, lat, lon) <= 50_000.0
    ref_c2 = haversine_m(60.0, -140.0, lat, lon) <= 300_000.0
    assert np.array_equal(got[:, 0], ref_u)
    assert np.array_equal(got[:, 1], ref_c1)
    assert np.array_equal(got[:, 2], ref_c2)
    assert not got[:, 3].any(), "nothing is inside a line"
    assert ref_u.sum() > 100 and ref_c2.sum() > 100
    # the notch of the U is outside
    assert not inside(fences, [49.0], [-105.0], 0.0)[0, 0]


def test_crossings_direction_and_touching() -> None:
    line = Geofence("b", "B", "line", ((49.0, -120.0), (49.0, -100.0), (49.0, -90.0)))
    index = GeofenceIndex([line])
    # south-bound (left -> right walking east), north-bound, a miss, a step crossing at the shared vertex
    c = index.crossings(
        [49.5, 48.5, 49.5, 49.2],
        [-110.0, -110.0, -110.0, -100.2],
        [48.5, 49.5, 49.1, 48.8],
        [-110.0, -110.0, -110.0, -99.8],
    )
    assert c.track_index.tolist() == [0, 1, 3]
    assert c.left_to_right.tolist() == [True, False, True]
    assert c.fraction[0] == pytest.approx(0.5)
    # a track that stops on the line and then goes on is counted once, on arrival
    arrive = index.crossings([49.5], [-110.0], [49.0], [-110.0])
    go_on = index.crossings([49.0], [-110.0], [48.5], [-110.0])
    assert len(arrive) == 1 and len(go_on) == 0
    # the module-level helper takes plain geofences
    assert len(crossings([line], [50.0], [-95.0], [48.0], [-95.0])) == 1


def test_geojson_forms_and_multi_parts(tmp_path: Path) -> None:
    doc = {
        "type": "FeatureCollection",
        "features": [
            {
                "type": "Feature",
                "id": "two",
                "properties": {"name": "Two boxes", "severity": "info", "max_alt_m": 30000},
                "geometry": {
                    "type": "MultiPolygon",
                    "coordinates": [
                        [[[0, 0], [1, 0], [1, 1], [0, 1], [0, 0]]],
                        [[[5, 5], [6, 5], [6, 6], [5, 6], [5, 5]]],
                    ],
                },
            },
            {
                "type": "Feature",
                "properties": {"radius_m": 1000},
                "geometry": {"type": "Point", "coordinates": [10, 20]},
            },
        ],
    }
    gs = load_geofences(_write(tmp_path, doc))
    assert [g.geofence_id for g in gs] == ["two#0", "two#1", "fences-1"]
    assert gs[0].coordinates == ((0.0, 0.0), (0.0, 1.0), (1.0, 1.0), (1.0, 0.0))  # (lat, lon), not closed
    assert gs[2].coordinates == ((20.0, 10.0),) and gs[2].radius_m == 1000.0
    assert gs[0].max_alt_m == 30000.0 and gs[0].severity == "info"


@pytest.mark.parametrize(
    ("doc", "message"),
    [
        (
            {"type": "Feature", "properties": {}, "geometry": {"type": "Point", "coordinates": [1, 2]}},
            "'radius_m'",
        ),
        (
            {
                "type": "Feature",
                "properties": {"radius_m": "wide"},
                "geometry": {"type": "Point", "coordinates": [1, 2]},
            },
            "'radius_m': 'wide' is not a number",
        ),
        ({"type": "Feature", "geometry": {"type": "Circle"}}, "'geometry.type'"),
        (
            {
                "type": "Feature",
                "properties": {"radius_m": 5},
                "geometry": {"type": "Point", "coordinates": [1, 95]},
            },
            "latitude 95.0 out of range",
        ),
        (
            {
                "type": "Feature",
                "properties": {"severity": "panic"},
                "geometry": {"type": "LineString", "coordinates": [[0, 0], [1, 1]]},
            },
            "'severity'",
        ),
        ({"type": "Topology"}, "FeatureCollection or Feature"),
    ],
)
def test_geojson_errors_name_file_feature_and_field(tmp_path: Path, doc: object, message: str) -> None:
    path = _write(tmp_path, doc)
    with pytest.raises(GeofenceError) as err:
        load_geofences(path)
    assert str(path) in str(err.value)
    assert message in str(err.value)


def test_geojson_syntax_error_names_line(tmp_path: Path) -> None:
    p = tmp_path / "bad.geojson"
    p.write_text('{"type": "FeatureCollection",\n "features": [,]}', encoding="utf-8")
    with pytest.raises(GeofenceError, match=r"bad\.geojson:2: not JSON"):
        load_geofences(p)


def test_config_tables() -> None:
    gs = geofences_from_config(
        [
            {
                "id": "site",
                "name": "Site",
                "center": [47.5, -111.2],
                "radius_m": 20000,
                "severity": "critical",
            },
            {"id": "box", "kind": "polygon", "coordinates": [[48, -112], [48, -110], [47, -110]]},
            {"id": "adiz", "kind": "line", "coordinates": [[50, -130], [50, -120]], "min_alt_m": 0},
        ]
    )
    assert [(g.geofence_id, g.kind) for g in gs] == [("site", "circle"), ("box", "polygon"), ("adiz", "line")]
    assert gs[0].coordinates == ((47.5, -111.2),) and gs[0].radius_m == 20000.0
    with pytest.raises(GeofenceError, match=r"geofences\[0\]: field 'center'"):
        geofences_from_config([{"id": "x", "center": [1.0], "radius_m": 5}])
    with pytest.raises(GeofenceError, match=r"geofences\[0\]: field 'kind': 'square'"):
        geofences_from_config([{"id": "x", "kind": "square"}])
    with pytest.raises(GeofenceError, match="appears twice"):
        geofences_from_config([{"id": "x", "center": [1, 2], "radius_m": 5}] * 2)


def test_airfield_csv_errors_name_line(tmp_path: Path) -> None:
    p = tmp_path / "fields.csv"
    p.write_text(
        '"icao","name","lat","lon"\n"KAAA","A","40.0","-100"\n"KBBB","B","north","-101"\n', encoding="utf-8"
    )
    with pytest.raises(GeofenceError, match=r"fields\.csv:3: field 'lat'"):
        airfields_from_csv(p)


@pytest.mark.shared_data
def test_real_military_airfields_as_circles(geo_dir: Path) -> None:
    fields = airfields_from_csv(geo_dir / "us_ca_military_airfields_from_airportsdata.csv", radius_m=10_000.0)
    by_id = {g.geofence_id: g for g in fields}
    assert len(fields) == 159
    for icao in ("KMIB", "KRCA", "CYOD", "PAED"):
        assert f"airfield:{icao}" in by_id
    assert "Cold Lake" in by_id["airfield:CYOD"].name
    index = GeofenceIndex(fields)
    # over Minot AFB, over Cold Lake, and over the empty Yukon
    hit = index.inside([48.4156, 54.405, 63.0], [-101.358, -110.279, -135.0], 15_000.0)
    named = [{index.ids[j] for j in np.flatnonzero(row)} for row in hit]
    assert "airfield:KMIB" in named[0]
    assert "airfield:CYOD" in named[1]
    assert named[2] == set()


def test_shapes_and_steps_across_the_antimeridian() -> None:
    aleutians = Geofence(
        "box", "Box", "polygon", ((50.0, 170.0), (50.0, -170.0), (55.0, -170.0), (55.0, 170.0))
    )
    circle = Geofence("c", "C", "circle", ((52.0, 179.9),), radius_m=30_000.0)
    line = Geofence("l", "L", "line", ((52.0, 175.0), (52.0, -175.0)))
    index = GeofenceIndex([aleutians, circle, line])
    got = index.inside([52.0, 52.0, 52.0, 52.0, 45.0], [175.0, -175.0, 180.0, -179.9, 180.0], 0.0)
    assert got[:, 0].tolist() == [True, True, True, True, False]
    assert got[:, 1].tolist() == [False, False, True, True, False]
    assert not inside([aleutians], [52.0], [0.0], 0.0).any(), "the box is the short way round"
    # a step from 179.95 E to 179.95 W crosses the line; one that stays east does not
    c = index.crossings([53.0, 53.0], [179.95, 176.0], [51.0, 51.0], [-179.95, 176.0])
    assert c.track_index.tolist() == [0, 1]
    assert c.left_to_right.tolist() == [True, True]
    # west-bound start at -179.95 (= 180.05 E) going north
    c2 = index.crossings([51.0], [-179.95], [53.0], [179.95])
    assert c2.left_to_right.tolist() == [False]


def test_crossings_match_a_reference_on_random_steps() -> None:
    shapely = pytest.importorskip("shapely")
    rng = np.random.default_rng(11)
    pts = np.cumsum(rng.normal(0, 0.5, (40, 2)), axis=0) + np.array([50.0, -110.0])
    line = Geofence("w", "Wiggly", "line", tuple((float(a), float(b)) for a, b in pts))
    n = 5000
    lat0 = rng.uniform(pts[:, 0].min() - 1, pts[:, 0].max() + 1, n)
    lon0 = rng.uniform(pts[:, 1].min() - 1, pts[:, 1].max() + 1, n)
    lat1, lon1 = lat0 + rng.normal(0, 0.3, n), lon0 + rng.normal(0, 0.3, n)
    got = crossings([line], lat0, lon0, lat1, lon1)
    geom = shapely.LineString(pts[:, ::-1])
    steps = shapely.linestrings(np.stack([np.c_[lon0, lat0], np.c_[lon1, lat1]], axis=1))
    meet = shapely.intersection(steps, geom)
    n_hits = np.where(shapely.is_empty(meet), 0, shapely.get_num_geometries(meet))
    # a step crossing an odd number of times changes side: exactly those are reported, once each
    odd = np.flatnonzero(n_hits % 2 == 1)
    assert got.track_index.tolist() == odd.tolist()
    assert odd.size > 50 and np.any(n_hits == 2), "the sample has wiggles crossed twice"
    # the direction: the start is left of the line's first crossed segment when left_to_right
    seg = got.segment_index
    a, b = pts[seg], pts[seg + 1]
    side = (b[:, 1] - a[:, 1]) * (lat0[odd] - a[:, 0]) - (b[:, 0] - a[:, 0]) * (lon0[odd] - a[:, 1])
    assert np.array_equal(side > 0, got.left_to_right)


def test_regions_and_arrivals_for_the_prediction_payload() -> None:
    from stratowatch.prediction.regions import RegionArrival

    gs = load_geofences(sample_sites_path())
    regions = to_regions(gs)
    assert [r.name for r in regions] == [g.geofence_id for g in gs if g.kind != "line"]
    field = next(r for r in regions if r.name == "mt-malmstrom-missile-field")
    assert field.contains([47.1, 49.5], [-109.6, -110.0]).tolist() == [True, False]
    payload = arrivals_payload(
        [
            RegionArrival("mt-malmstrom-afb", 0.4, 20, 1000.0, 1500.0),
            RegionArrival("nd-minot-afb", 0.0, 0, float("nan"), float("nan")),
        ]
    )
    assert payload == [
        {"geofence_id": "mt-malmstrom-afb", "probability": 0.4, "earliest_s": 1000.0, "median_s": 1500.0},
        {"geofence_id": "nd-minot-afb", "probability": 0.0, "earliest_s": None, "median_s": None},
    ]
    json.dumps(payload, allow_nan=False)
