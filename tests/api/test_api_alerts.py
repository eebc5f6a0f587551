"""Alerts and incidents over HTTP: lists, filters, errors (acknowledge and resolve through the
real alert engine: test_api_pipeline.py)."""

from __future__ import annotations

from typing import Any

from api_helpers import Picture
from fastapi.testclient import TestClient
from pydantic import TypeAdapter

from stratowatch.api.models import AlertOut, IncidentOut, Page


def test_alerts_newest_first_and_filters(client: TestClient, picture: Picture) -> None:
    body = client.get("/api/v1/alerts").json()
    TypeAdapter(Page[AlertOut]).validate_python(body)
    assert [a["alert_id"] for a in body["items"]] == [
        "new_unidentified:300",
        "geofence_enter:100:mt-malmstrom",
    ]
    assert body["total"] == 2
    entered = client.get("/api/v1/alerts", params={"rule": "geofence_enter"}).json()
    assert [a["geofence_id"] for a in entered["items"]] == ["mt-malmstrom"]
    assert entered["items"][0]["details"] == {"alt_m": 17_000.0}
    late = client.get("/api/v1/alerts", params={"since_s": picture.alerts[1].time_s}).json()
    assert late["total"] == 1
    assert client.get("/api/v1/alerts", params={"rule": "nonsense"}).status_code == 422


def test_acknowledge_errors(client: TestClient, picture: Picture) -> None:
    r = client.post("/api/v1/alerts/nope/acknowledge", json={"who": "x"})
    assert r.status_code == 404 and r.json()["error"]["code"] == "not_found"
    r = client.post("/api/v1/alerts/new_unidentified:300/acknowledge", json={})
    assert r.status_code == 422 and r.json()["error"]["details"][0]["field"] == "body.who"
    r = client.post("/api/v1/alerts/new_unidentified:300/acknowledge", json={"who": ""})
    assert r.status_code == 422
    r = client.get("/api/v1/alerts/new_unidentified:300/acknowledge")
    assert r.status_code == 405 and r.json()["error"]["code"] == "method_not_allowed"


def test_incidents_list_one_alerts_and_resolve(client: TestClient, picture: Picture, store: Any) -> None:
    body = client.get("/api/v1/incidents").json()
    TypeAdapter(Page[IncidentOut]).validate_python(body)
    assert [i["incident_id"] for i in body["items"]] == ["inc-1", "inc-0"]
    assert client.get("/api/v1/incidents", params={"status": "open"}).json()["total"] == 1
    one = client.get("/api/v1/incidents/inc-1").json()
    assert one["track_ids"] == [100, 300] and one["history"][0][1:] == ["system", "opened"]
    alerts = client.get("/api/v1/incidents/inc-1/alerts").json()
    assert sorted(a["alert_id"] for a in alerts) == sorted(a.alert_id for a in picture.alerts)
    assert client.get("/api/v1/incidents", params={"status": "resolved"}).json()["total"] == 1
    assert client.post("/api/v1/incidents/none/resolve", json={"who": "a"}).status_code == 404
    assert client.get("/api/v1/incidents/none/alerts").status_code == 404
