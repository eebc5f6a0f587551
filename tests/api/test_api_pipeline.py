"""The API over the real Pipeline: a balloon drifts into a geofence; the alert, its incident,
acknowledge and resolve go through the pipeline's alert engine and come back over HTTP."""

from __future__ import annotations

import math
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest
from api_helpers import T0
from fastapi.testclient import TestClient
from pydantic import TypeAdapter

from auth_helpers import bearer
from stratowatch.api import create_app
from stratowatch.api.models import AuditOut, Page
from stratowatch.config import load_settings
from stratowatch.model import Geofence, MeasurementKind, Observation
from stratowatch.service.bus import InProcessBus
from stratowatch.service.pipeline import Pipeline
from stratowatch.store import open_store

SITE = (47.5, -111.2)
STEPS = 30
STEP_S = 10.0
SPEED_MPS = 25.0


def balloon(k: int) -> tuple[float, float, float]:
    """Eastbound at 25 m/s, 18 km up, starting 35 km west of the site (enters its 30 km circle
    after about 200 s)."""
    east_m = -35_000.0 + SPEED_MPS * STEP_S * k
    return SITE[0], SITE[1] + math.degrees(east_m / (6_371_000.0 * math.cos(math.radians(SITE[0])))), 18_000.0


@pytest.fixture
def live(tmp_path: Path) -> Iterator[tuple[Pipeline, TestClient]]:
    settings = load_settings(
        None,
        env={},
        check_files=False,
        store_url=f"sqlite:///{tmp_path / 'live.db'}",
        predictions={"enabled": False},
        geofences={"sample_sites": False},
    )
    store = open_store(settings.store_url)
    site = Geofence("test-site", "Test site", "circle", (SITE,), radius_m=30_000.0, severity="critical")
    pipeline = Pipeline(settings, store, InProcessBus(), winds=None, geofences=[site])
    for k in range(STEPS):
        lat, lon, alt = balloon(k)
        obs = Observation(
            T0 + STEP_S * k, "radar-a", MeasurementKind.GEODETIC, (lat, lon, alt), (100.0, 150.0)
        )
        pipeline.process(T0 + STEP_S * k, [obs])
    app = create_app(pipeline, picture_ttl_s=0.0, freeze_gc=False)
    with TestClient(app, headers=bearer(app)) as client:
        yield pipeline, client
    pipeline.close()
    store.close()


def test_track_alert_acknowledge_resolve(live: tuple[Pipeline, Any]) -> None:
    pipeline, client = live
    tracks = client.get("/api/v1/tracks").json()["items"]
    assert len(tracks) == 1
    track = tracks[0]
    lat, lon, alt = balloon(STEPS - 1)
    assert abs(track["lat_deg"] - lat) < 0.02 and abs(track["lon_deg"] - lon) < 0.02
    assert abs(track["alt_m"] - alt) < 300
    assert abs(track["velocity_enu_mps"][0] - SPEED_MPS) < 5

    entered = client.get("/api/v1/alerts", params={"rule": "geofence_enter"}).json()["items"]
    assert [(a["track_id"], a["geofence_id"]) for a in entered] == [(track["track_id"], "test-site")]
    alert = entered[0]
    assert alert["incident_id"] is not None and alert["acknowledged_by"] is None

    events = pipeline.bus.subscribe(["alerts", "incidents"])
    r = client.post(f"/api/v1/alerts/{alert['alert_id']}/acknowledge", json={"who": "duty officer"})
    assert r.status_code == 200, r.text
    assert r.json()["acknowledged_by"] == "duty officer"
    assert pipeline.store.alert(alert["alert_id"]).acknowledged_by == "duty officer"
    published = events.drain()
    assert ("alerts", r.json()) in published  # the stream carries the same body
    assert any(topic == "incidents" for topic, _ in published)
    acked = client.get("/api/v1/alerts", params={"acknowledged": "true"}).json()["items"]
    assert [a["alert_id"] for a in acked] == [alert["alert_id"]]
    audit_page = client.get("/api/v1/audit").json()
    TypeAdapter(Page[AuditOut]).validate_python(audit_page)
    audit = next(e for e in audit_page["items"] if e["action"] != "release")  # reads are audited too
    assert (audit["actor"], audit["action"]) == ("duty officer", "acknowledge")
    incident = client.get(f"/api/v1/incidents/{alert['incident_id']}").json()
    assert incident["status"] == "tracking"
    assert track["track_id"] in incident["track_ids"]
    assert any(who == "duty officer" for _, who, _ in incident["history"])

    r = client.post(
        f"/api/v1/incidents/{alert['incident_id']}/resolve", json={"who": "analyst", "note": "test"}
    )
    assert r.status_code == 200 and r.json()["status"] == "resolved"
    assert pipeline.store.incident(alert["incident_id"]).status == "resolved"
    assert client.post("/api/v1/alerts/nope/acknowledge", json={"who": "x"}).status_code == 404


def test_health_and_metrics_carry_the_pipeline_figures(live: tuple[Pipeline, Any]) -> None:
    _, client = live
    health = client.get("/health").json()
    assert health["pipeline"]["steps"] == STEPS
    assert health["counts"]["observations"] == STEPS
    text = client.get("/metrics").text
    assert f"stratowatch_pipeline_steps_total {STEPS}" in text
    assert f"stratowatch_observations_ingested_total {STEPS}" in text
    assert "# TYPE stratowatch_alerts_total counter" in text


def test_geofence_changes_reach_the_alert_engine(live: tuple[Pipeline, Any]) -> None:
    pipeline, client = live
    fence = {
        "geofence_id": "east-box",
        "name": "East box",
        "kind": "polygon",
        "coordinates": [[47.0, -111.0], [48.0, -111.0], [48.0, -110.0], [47.0, -110.0]],
    }
    assert client.post("/api/v1/geofences", json=fence).status_code == 201
    assert "east-box" in {g.geofence_id for g in pipeline.alerts.geofences}
    assert client.delete("/api/v1/geofences/east-box").status_code == 204
    assert "east-box" not in {g.geofence_id for g in pipeline.alerts.geofences}
