"""Geofence CRUD over HTTP: create, read, list, replace, delete; validation; audit; bus."""

from __future__ import annotations

import math
from typing import Any

from fastapi.testclient import TestClient

from stratowatch.service.bus import InProcessBus

MINOT = {
    "geofence_id": "nd-minot",
    "name": "Minot AFB",
    "kind": "circle",
    "coordinates": [[48.416, -101.358]],
    "radius_m": 40_000,
    "max_alt_m": 30_000,
    "severity": "critical",
    "source": "public fact sheet",
}


def test_crud_round_trip(client: TestClient, store: Any, bus: InProcessBus) -> None:
    sub = bus.subscribe(["geofences"])
    r = client.post("/api/v1/geofences", json=MINOT, headers={"X-Actor": "planner"})
    assert r.status_code == 201, r.text
    assert r.headers["location"] == "/api/v1/geofences/nd-minot"
    created = r.json()
    assert created["min_alt_m"] is None and created["max_alt_m"] == 30_000
    stored = {g.geofence_id: g for g in store.geofences()}["nd-minot"]
    assert stored.coordinates == ((48.416, -101.358),) and stored.radius_m == 40_000
    assert math.isinf(stored.min_alt_m) and stored.min_alt_m < 0
    assert client.get("/api/v1/geofences/nd-minot").json() == created
    assert sub.get_nowait() == ("geofences", {"action": "geofence_create", "geofence": created})

    assert client.post("/api/v1/geofences", json=MINOT).status_code == 409

    moved = {**MINOT, "kind": "polygon", "coordinates": [[48, -102], [49, -102], [49, -101]], "radius_m": 0}
    r = client.put("/api/v1/geofences/nd-minot", json=moved)
    assert r.status_code == 200 and r.json()["kind"] == "polygon"
    listed = client.get("/api/v1/geofences").json()
    assert listed["total"] == 1 and listed["items"][0]["coordinates"] == [[48, -102], [49, -102], [49, -101]]

    assert client.delete("/api/v1/geofences/nd-minot", headers={"X-Actor": "planner"}).status_code == 204
    assert client.get("/api/v1/geofences/nd-minot").status_code == 404
    assert client.delete("/api/v1/geofences/nd-minot").status_code == 404
    actions = [(e["actor"], e["action"]) for e in client.get("/api/v1/audit").json()["items"]]
    assert ("planner", "geofence_create") in actions and ("planner", "geofence_delete") in actions
    assert ("api", "geofence_replace") in actions


def test_invalid_geofences_are_refused_with_the_reason(client: TestClient, store: Any) -> None:
    cases = [
        ({**MINOT, "radius_m": 0}, "radius_m > 0"),
        ({**MINOT, "kind": "polygon", "coordinates": [[1, 2], [3, 4]]}, "at least 3"),
        ({**MINOT, "coordinates": [[95, 0]]}, "lat_deg, lon_deg"),
        ({**MINOT, "min_alt_m": 5000, "max_alt_m": 100}, "min_alt_m is above"),
        ({**MINOT, "kind": "blob"}, "body.kind"),
        ({**MINOT, "colour": "red"}, "body.colour"),
        ({**MINOT, "geofence_id": "has space"}, "body.geofence_id"),
    ]
    for body, reason in cases:
        r = client.post("/api/v1/geofences", json=body)
        assert r.status_code == 422, body
        assert reason in r.json()["error"]["message"] or reason in str(r.json()["error"]["details"]), r.json()
    assert store.geofences() == []
    r = client.put("/api/v1/geofences/other-id", json=MINOT)
    assert r.status_code == 400 and r.json()["error"]["details"] == {"parameter": "geofence_id"}
