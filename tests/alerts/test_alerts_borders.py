"""Borders from TopoJSON: arc decoding, shared arcs, side labels, and crossings with direction."""

from __future__ import annotations

import itertools
import json
from pathlib import Path

import numpy as np
import pytest

from stratowatch.alerts.borders import Border, TopoJSON, shared_border
from stratowatch.alerts.engine import AlertEngine, RulesConfig
from stratowatch.alerts.geofences import GeofenceError, GeofenceIndex
from stratowatch.model import ObjectClass

REPO_ROOT = next(p for p in Path(__file__).resolve().parents if (p / "pyproject.toml").exists())
GEO_DIR = REPO_ROOT.parent / "shared" / "data" / "geo"


def _two_countries(tmp_path: Path) -> Path:
    """North (id "1") and South (id "2"): two boxes sharing the edge lat 49 from lon -120 to -100.

    Quantized: positions are integers, delta-encoded, with scale (0.5, 0.5) and translate (-130, 40).
    Arc 0 is the shared edge drawn east -> west; North uses it forwards, South reversed (~0)."""

    def q(points: list[tuple[float, float]]) -> list[list[int]]:
        xy = [(round((lon + 130) / 0.5), round((lat - 40) / 0.5)) for lon, lat in points]
        out = [list(xy[0])]
        out += [[b[0] - a[0], b[1] - a[1]] for a, b in itertools.pairwise(xy)]
        return out

    shared = [(-100.0, 49.0), (-110.0, 49.0), (-120.0, 49.0)]
    north_rest = [(-120.0, 49.0), (-120.0, 55.0), (-100.0, 55.0), (-100.0, 49.0)]
    south_rest = [(-100.0, 49.0), (-100.0, 45.0), (-120.0, 45.0), (-120.0, 49.0)]
    topo = {
        "type": "Topology",
        "transform": {"scale": [0.5, 0.5], "translate": [-130, 40]},
        "objects": {
            "countries": {
                "type": "GeometryCollection",
                "geometries": [
                    {"type": "Polygon", "id": "1", "properties": {"name": "North"}, "arcs": [[0, 1]]},
                    {"type": "MultiPolygon", "id": "2", "properties": {"name": "South"}, "arcs": [[[~0, 2]]]},
                ],
            }
        },
        "arcs": [q(shared), q(north_rest), q(south_rest)],
    }
    p = tmp_path / "two.topo.json"
    p.write_text(json.dumps(topo), encoding="utf-8")
    return p


def test_arcs_are_decoded_with_the_transform(tmp_path: Path) -> None:
    topo = TopoJSON(_two_countries(tmp_path))
    assert np.allclose(topo.arcs[0], [[-100, 49], [-110, 49], [-120, 49]])
    assert topo.arc_indices("1") == {0, 1} and topo.arc_indices("2") == {0, 2}
    assert topo.polygons("1").contains(__import__("shapely").Point(-110, 52))
    assert topo.name("2") == "South"


def test_shared_border_and_its_sides(tmp_path: Path) -> None:
    border = shared_border(_two_countries(tmp_path), "1", "2", ("NOR", "SOU"))
    assert len(border.geofences) == 1
    g = border.geofences[0]
    assert g.kind == "line" and g.geofence_id == "border:NOR-SOU:0"
    assert g.coordinates == ((49.0, -100.0), (49.0, -110.0), (49.0, -120.0))
    # walking east -> west, North is on the right
    assert border.sides[g.geofence_id] == ("SOU", "NOR")
    index = GeofenceIndex(border.geofences)
    c = index.crossings([50.0, 48.0], [-105.0, -115.0], [48.0, 50.0], [-105.0, -115.0])
    assert c.left_to_right.tolist() == [False, True]  # N->S goes right -> left


def test_no_shared_border_is_an_error(tmp_path: Path) -> None:
    p = _two_countries(tmp_path)
    doc = json.loads(p.read_text())
    doc["objects"]["countries"]["geometries"][1]["arcs"] = [[[2]]]
    p.write_text(json.dumps(doc))
    with pytest.raises(GeofenceError, match="share no border"):
        shared_border(p, "1", "2")
    with pytest.raises(GeofenceError, match="no geometry with id '999'"):
        shared_border(p, "1", "999")


def _crossing_alerts(border: Border, make_track, path: list[tuple[float, float]]):  # type: ignore[no-untyped-def]
    engine = AlertEngine(border.geofences, RulesConfig(border_sides=border.sides))
    out = []
    for k, (lat, lon) in enumerate(path):
        track = make_track(7, lat, lon, 11_000.0, 60.0 * k, label=ObjectClass.AIRCRAFT)  # no transponder
        out.extend(engine.evaluate(60.0 * k, [track], {}))
    return [a for a in out if a.rule == "border_crossing"]


@pytest.fixture(
    scope="module", params=["world-atlas_countries-50m.topo.json", "world-atlas_countries-10m.topo.json"]
)
def us_canada(request: pytest.FixtureRequest) -> Border:
    path = GEO_DIR / request.param
    if not path.exists():
        pytest.skip(f"real geo data not present: {path}")
    return shared_border(path, "124", "840", ("CAN", "USA"))


@pytest.mark.shared_data
def test_us_canada_border_from_world_atlas(us_canada: Border, make_track) -> None:  # type: ignore[no-untyped-def]
    border = us_canada
    lons = np.concatenate([np.array(g.coordinates)[:, 1] for g in border.geofences])
    lats = np.concatenate([np.array(g.coordinates)[:, 0] for g in border.geofences])
    # the border runs from the Pacific and Alaska's 141st meridian to New Brunswick
    assert lons.min() < -140.9 and lons.max() > -67.5
    on_49 = (lons > -120) & (lons < -96)
    assert np.allclose(lats[on_49], 49.0, atol=0.02)

    south = _crossing_alerts(border, make_track, [(49.1, -110.0), (48.9, -110.0)])
    assert len(south) == 1
    assert south[0].details["direction"] == "CAN->USA"
    assert "CAN->USA" in south[0].message
    north = _crossing_alerts(border, make_track, [(48.9, -100.0), (49.1, -100.0)])
    assert [a.details["direction"] for a in north] == ["USA->CAN"]
    # Yukon -> Alaska across the 141st meridian
    west = _crossing_alerts(border, make_track, [(64.0, -140.5), (64.0, -141.5)])
    assert [a.details["direction"] for a in west] == ["CAN->USA"]
    # staying in Montana crosses nothing
    assert _crossing_alerts(border, make_track, [(48.0, -110.0), (48.5, -109.0)]) == []
