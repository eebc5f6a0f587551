"""Predictions over HTTP: the stored prediction, its paths, cones and arrivals; all arrivals."""

from __future__ import annotations

from api_helpers import T0, Picture
from fastapi.testclient import TestClient
from pydantic import TypeAdapter

from stratowatch.api.models import ArrivalRowOut, FeatureCollectionOut, Page, PredictionOut


def test_prediction_parts(client: TestClient, picture: Picture) -> None:
    body = PredictionOut.model_validate(client.get("/api/v1/predictions/100").json())
    assert body.track_id == 100 and body.time_s == T0
    kinds = [f["properties"]["kind"] for f in body.geojson["features"]]
    assert kinds == ["cone", "cone", "median_path", "deterministic_path"]

    paths = client.get("/api/v1/predictions/100/paths").json()
    FeatureCollectionOut.model_validate(paths)
    assert [f["properties"]["kind"] for f in paths["features"]] == ["median_path", "deterministic_path"]
    assert len(paths["features"][0]["geometry"]["coordinates"]) == 5

    cones = client.get("/api/v1/predictions/100/cones").json()
    FeatureCollectionOut.model_validate(cones)
    assert [f["properties"]["probability"] for f in cones["features"]] == [0.5, 0.9]
    half = client.get("/api/v1/predictions/100/cones", params={"probability": 0.5}).json()
    assert [f["properties"]["probability"] for f in half["features"]] == [0.5]

    arrivals = client.get("/api/v1/predictions/100/arrivals").json()
    assert arrivals == [
        {"geofence_id": "mt-malmstrom", "probability": 0.62, "earliest_s": T0 + 3600, "median_s": T0 + 7200},
        {"geofence_id": "nd-minot", "probability": 0.1, "earliest_s": T0 + 20000, "median_s": None},
    ]


def test_missing_prediction_is_404(client: TestClient, picture: Picture) -> None:
    for path in ("", "/paths", "/cones", "/arrivals"):
        r = client.get(f"/api/v1/predictions/201{path}")
        assert r.status_code == 404 and r.json()["error"]["code"] == "not_found"


def test_arrivals_across_tracks(client: TestClient, picture: Picture) -> None:
    body = client.get("/api/v1/arrivals").json()
    TypeAdapter(Page[ArrivalRowOut]).validate_python(body)
    rows = body["items"]
    assert [(r["track_id"], r["geofence_id"]) for r in rows] == [(100, "mt-malmstrom"), (100, "nd-minot")]
    likely = client.get("/api/v1/arrivals", params={"min_probability": 0.5}).json()
    assert [r["geofence_id"] for r in likely["items"]] == ["mt-malmstrom"]
    minot = client.get("/api/v1/arrivals", params={"geofence_id": "nd-minot"}).json()
    assert [r["probability"] for r in minot["items"]] == [0.1]
