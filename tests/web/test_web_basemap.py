"""The console's files shipped in the package: the offline base map (cut at the antimeridian, land
where land is), the page and bundle, and how the API serves them with the viewer's banner."""

from __future__ import annotations

import json
from pathlib import Path
from types import SimpleNamespace
from typing import Any

import numpy as np
import pytest
from fastapi.testclient import TestClient
from shapely.geometry import Point, shape

from auth_helpers import bearer, memory_authority
from stratowatch.api import create_app
from stratowatch.api.routers.console import clearance
from stratowatch.service.bus import InProcessBus
from stratowatch.web import static_dir, static_files


def _load(name: str) -> dict[str, Any]:
    return json.loads((static_dir() / name).read_text())


def _rings(geometry: dict[str, Any]) -> list[list[list[float]]]:
    if geometry["type"] == "MultiPolygon":
        return [ring for poly in geometry["coordinates"] for ring in poly]
    return list(geometry["coordinates"])


@pytest.fixture(scope="module")
def land() -> Any:
    return shape(_load("land.json")["features"][0]["geometry"])


def test_the_package_ships_the_page_bundle_and_base_map_within_a_few_mb() -> None:
    files = static_files()
    assert {"index.html", "console.js", "console.css", "land.json", "borders.json", "states.json"} <= set(
        files
    )
    assert sum(p.stat().st_size for p in files.values()) < 4 * 2**20
    page = files["index.html"].read_text()
    assert 'src="static/console.js"' in page and "http" not in page.replace("http-equiv", "")


@pytest.mark.parametrize("name", ["land.json", "borders.json", "states.json"])
def test_nothing_wraps_the_globe(name: str) -> None:
    for feature in _load(name)["features"]:
        for part in _rings(feature["geometry"]):
            xy = np.asarray(part)
            assert np.all(np.abs(xy[:, 0]) <= 180.0)
            # the only long east-west step allowed is along a pole (Antarctica's closure)
            jump = np.abs(np.diff(xy[:, 0])) > 180.0
            along_pole = (xy[:-1, 1] == -90.0) & (xy[1:, 1] == -90.0)
            assert not np.any(jump & ~along_pole), (name, xy[1:][jump & ~along_pole][:3])


def test_land_is_where_land_is(land: Any) -> None:
    on_land = {
        "Calgary": (51.05, -114.07),
        "Chukotka west of 180": (67.5, 179.0),
        "Chukotka east of 180": (67.5, -179.0),
        "Fiji, Vanua Levu": (-16.6, 179.3),
        "Fiji, Taveuni": (-16.85, -179.95),
        "Wrangel Island": (71.3, -179.5),
        "Antarctica": (-85.0, 0.0),
        "Antarctica west of 180": (-86.0, 179.9),
        "Antarctica east of 180": (-86.0, -179.9),
        "Antarctica near the pole": (-89.5, 90.0),
    }
    at_sea = {"Pacific": (0.0, -150.0), "Bering Sea": (58.0, -175.0), "Hudson Bay": (60.0, -86.0)}
    for where, (lat, lon) in on_land.items():
        assert land.contains(Point(lon, lat)), where
    for where, (lat, lon) in at_sea.items():
        assert not land.contains(Point(lon, lat)), where


def test_us_states_and_borders_are_where_they_belong() -> None:
    states = shape(_load("states.json")["features"][0]["geometry"])
    borders = shape(_load("borders.json")["features"][0]["geometry"])
    # the Montana / North Dakota line runs along 104.05 W; the US-Canada border along 49 N in the west
    assert states.distance(Point(-104.05, 47.0)) < 0.05
    assert borders.distance(Point(-110.0, 49.0)) < 0.05
    assert states.bounds[0] > -180.0 and borders.bounds[2] <= 180.0


def test_the_api_serves_the_console_and_the_banner(tmp_path: Path) -> None:
    pipeline = SimpleNamespace(
        store=None,
        bus=InProcessBus(),
        settings=SimpleNamespace(
            partners=[
                SimpleNamespace(id="USA", releasable_to=["USA", "PUBLIC"]),
                SimpleNamespace(id="CAN", releasable_to=["CAN"]),
            ]
        ),
    )
    app = create_app(pipeline, picture_ttl_s=0.0, freeze_gc=False, authority=memory_authority())
    with TestClient(app) as anonymous:  # no session: the sign-in form, no console, no data
        form = anonymous.get("/")
        assert form.status_code == 200 and 'action="/api/v1/auth/login"' in form.text
        assert "console.js" not in form.text
        assert anonymous.get("/api/v1/console/whoami").status_code == 401
    with TestClient(app, headers=bearer(app)) as client:
        page = client.get("/")
        assert page.status_code == 200 and page.headers["content-type"].startswith("text/html")
        assert "stratowatch console" in page.text and "console.js" in page.text
        js = client.get("/static/console.js")
        assert js.status_code == 200 and js.headers["content-type"].startswith("text/javascript")
        assert len(js.content) == (static_dir() / "console.js").stat().st_size
        land = client.get("/static/land.json")
        assert (
            land.headers["content-type"] == "application/json" and land.json()["type"] == "FeatureCollection"
        )
        for bad in ("/static/..%2Fweb%2F__init__.py", "/static/nope.js"):
            r = client.get(bad)
            assert r.status_code == 404 and r.json()["error"]["code"] == "not_found"
        who = client.get("/api/v1/console/whoami").json()
        assert who == {
            "subject": "test-admin",
            "partner": "LOCAL",
            "kind": "service",
            "scopes": ["admin"],
            "releasable_to": ["PUBLIC", "CAN", "USA"],
            "banner": "REL TO CAN, USA",
            "partners": ["USA", "CAN"],
        }
    # a node with no partners stands alone: its viewer sees what its own sensors hold
    radars = [
        SimpleNamespace(releasable_to=frozenset({"CAN"})),
        SimpleNamespace(releasable_to=frozenset({"PUBLIC"})),
    ]
    assert clearance(SimpleNamespace(partners=[]), radars) == ["CAN"]
    assert clearance(SimpleNamespace(partners=[])) == []
    assert clearance(
        SimpleNamespace(partners=[SimpleNamespace(id="USA", releasable_to=["USA"])]), radars
    ) == ["USA"]


def test_backtrack_runs_a_backward_ensemble_from_the_track(tmp_path: Path) -> None:
    from stratowatch.model import Track, TrackStatus
    from stratowatch.weather import analytic_field

    t0 = 1_675_300_000.0
    track = Track(
        track_id=7,
        time_s=t0,
        status=TrackStatus.CONFIRMED,
        lat_deg=50.0,
        lon_deg=-112.0,
        alt_m=19_000.0,
        velocity_enu_mps=(20.0, -5.0, 0.0),
        position_sigma_m=(300.0, 300.0, 100.0),
        model_probabilities={"drift": 1.0},
        identities=(),
        sensors=("radar",),
        first_time_s=t0 - 3600.0,
        last_update_s=t0,
        n_updates=50,
    )
    store = SimpleNamespace(track=lambda tid: track if tid == 7 else None)
    pipeline = SimpleNamespace(
        store=store,
        bus=InProcessBus(),
        settings=None,
        winds=analytic_field(t0_s=t0 - 30 * 3600.0, hours=36.0),
    )
    app = create_app(pipeline, picture_ttl_s=0.0, freeze_gc=False, authority=memory_authority())
    with TestClient(app, headers=bearer(app)) as client:
        doc = client.get("/api/v1/console/backtrack/7", params={"hours": 12, "members": 50}).json()
        assert client.get("/api/v1/console/backtrack/8").status_code == 404
        pipeline.winds = None
        none = client.get("/api/v1/console/backtrack/7")
        assert none.status_code == 409 and none.json()["error"]["code"] == "no_winds"
    assert doc["properties"]["members"] == 50
    assert doc["properties"]["earliest_s"] == pytest.approx(t0 - 12 * 3600.0)
    median = next(f for f in doc["features"] if f["properties"]["kind"] == "median_path")
    assert median["properties"]["backward"] is True
    lon, lat = median["geometry"]["coordinates"][0][:2]
    assert (lat, lon) == pytest.approx((50.0, -112.0), abs=1e-3)
    # 12 h back at stratospheric wind speeds: tens to hundreds of km from where it is now
    lon_end, lat_end = median["geometry"]["coordinates"][-1][:2]
    assert 0.2 < abs(lon_end - lon) + abs(lat_end - lat) < 20.0
    members = [f for f in doc["features"] if f["properties"]["kind"] == "member"]
    assert len(members) == 30 and len({f["properties"]["member"] for f in members}) == 30
    assert all(f["geometry"]["coordinates"][0] == pytest.approx([lon, lat], abs=0.1) for f in members)
    regions = [f for f in doc["features"] if f["properties"]["kind"] == "cone"]
    assert sorted(f["properties"]["probability"] for f in regions) == [0.5, 0.9]
