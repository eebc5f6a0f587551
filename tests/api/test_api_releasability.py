"""What a partner is shown through the API: its own picture, only released data, no leaks
through ids, counts, sensors, history or error messages."""

from __future__ import annotations

import dataclasses
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest
from fastapi.testclient import TestClient

from auth_helpers import bearer
from stratowatch.api import create_app
from stratowatch.api.routers.stream import event_filter
from stratowatch.config import load_settings
from stratowatch.service.bus import InProcessBus
from stratowatch.service.pipeline import ID_BLOCK, Pipeline
from stratowatch.sim.scenario import ScenarioConfig, generate_scenario
from stratowatch.store import open_store


@pytest.fixture(scope="module")
def scenario() -> Any:
    return generate_scenario(ScenarioConfig(seed=5, duration_s=600.0, n_aircraft=5))


@pytest.fixture
def node(tmp_path: Path, scenario: Any) -> Iterator[tuple[Any, str]]:
    radars = sorted(
        s.sensor_id for s in scenario.sensors.values() if s.owner == "CAN" and s.kind.startswith("radar")
    )
    national = max(radars, key=lambda r: sum(o.sensor_id == r for _, obs in scenario.scans for o in obs))
    sensors = dict(scenario.sensors)
    sensors[national] = dataclasses.replace(sensors[national], releasable_to=frozenset({"CAN"}))
    url = f"sqlite:///{tmp_path / 'can.db'}"
    settings = load_settings(
        None,
        env={},
        check_files=False,
        store_url=url,
        predictions={"enabled": False},
        geofences={"sample_sites": False},
        node={"partner": "CAN"},
        partners=[{"id": "USA"}],
    )
    store = open_store(url)
    pipe = Pipeline(settings, store, InProcessBus(), winds=None, sensors=sensors, geofences=[])
    for t, obs in scenario.scans:
        pipe.process(t, obs)
    app = create_app(pipe, heartbeat_s=0.2, picture_ttl_s=0.0, freeze_gc=False)
    yield app, national
    pipe.close()
    store.close()


def test_a_partner_reads_its_own_picture_and_only_released_data(node: tuple[Any, str], scenario: Any) -> None:
    app, national = node
    with TestClient(app) as client:
        can = bearer(app)
        usa = bearer(
            app, "usa-svc", scopes=["tracks:read", "observations:read", "alerts:read"], partner="USA"
        )
        own = client.get("/api/v1/tracks", params={"limit": 1000}, headers=can).json()["items"]
        theirs = client.get("/api/v1/tracks", params={"limit": 1000}, headers=usa).json()["items"]
        assert own and theirs
        assert all(t["track_id"] < ID_BLOCK for t in own)
        assert all(t["track_id"] > ID_BLOCK and national not in t["sensors"] for t in theirs)
        assert any(national in t["sensors"] for t in own)
        # another picture's track is "not found", word for word as a track that does not exist
        hidden = client.get(f"/api/v1/tracks/{own[0]['track_id']}", headers=usa)
        missing = client.get("/api/v1/tracks/987654321", headers=usa)
        assert hidden.status_code == missing.status_code == 404
        assert hidden.json()["error"]["code"] == missing.json()["error"]["code"]
        assert hidden.text == missing.text.replace("987654321", str(own[0]["track_id"]))
        hist = client.get(f"/api/v1/tracks/{theirs[0]['track_id']}/history", headers=usa).json()["items"]
        assert hist and all(national not in s["sensors"] for s in hist)
        box = client.get(
            "/api/v1/history",
            params={"t0": 0, "t1": 2e9, "bbox": "-90,-180,90,180", "limit": 1000},
            headers=usa,
        ).json()
        assert all(s["track_id"] > ID_BLOCK for s in box["items"])
        # raw plots: counts and pages hold only what was released
        n_national = sum(o.sensor_id == national for _, obs in scenario.scans for o in obs)
        obs_page = client.get("/api/v1/observations", params={"limit": 1000}, headers=usa).json()
        assert obs_page["total"] == scenario.n_observations - n_national
        assert all(o["sensor_id"] != national for o in obs_page["items"])
        # sensors: the national radar is not listed; the others' sites are their owners' own
        sensors = {
            s["sensor_id"]: s
            for s in client.get("/api/v1/sensors", params={"limit": 1000}, headers=usa).json()["items"]
        }
        assert national not in sensors
        can_radars = [s for s in sensors.values() if s["owner"] == "CAN" and s["kind"].startswith("radar")]
        assert can_radars and all(s["lat_deg"] is None for s in can_radars)
        usa_radars = [s for s in sensors.values() if s["owner"] == "USA" and s["kind"].startswith("radar")]
        assert usa_radars and all(s["lat_deg"] is not None for s in usa_radars)
        # exports are the partner's picture too
        csv = client.get("/api/v1/exports/tracks.csv", headers=usa).text
        assert national not in csv
        # whoever asks, the node's own numbers are not in the partner's health answer
        health = client.get("/health", headers=usa).json()
        assert "counts" not in health


def test_the_stream_carries_only_the_callers_picture() -> None:
    bus = InProcessBus()
    sub = bus.subscribe(["tracks", "alerts", "geofences"], maxsize=10)
    sub.accept = event_filter("USA", frozenset({"alerts"}))
    bus.publish("tracks", {"audience": "", "tracks": [{"track_id": 1}]})
    bus.publish("tracks", {"audience": "USA", "tracks": [{"track_id": ID_BLOCK + 1}]})
    bus.publish("alerts", {"audience": "USA", "alert_id": "a"})  # redacted for USA
    bus.publish("geofences", {"action": "add", "geofence": {"geofence_id": "g1", "releasable_to": ["CAN"]}})
    bus.publish(
        "geofences", {"action": "add", "geofence": {"geofence_id": "g2", "releasable_to": ["PUBLIC"]}}
    )
    got = sub.drain()
    assert [(t, e.get("audience"), (e.get("geofence") or {}).get("geofence_id")) for t, e in got] == [
        ("tracks", "USA", None),
        ("geofences", None, "g2"),
    ]
    assert sub.dropped == 0  # what was not for USA was never queued, so never counted
