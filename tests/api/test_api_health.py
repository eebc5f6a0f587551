"""Health, Prometheus metrics, OpenAPI and the error body of unknown paths."""

from __future__ import annotations

import re
from typing import Any

from api_helpers import Picture
from fastapi.testclient import TestClient

from auth_helpers import bearer
from stratowatch.api.models import HealthOut


def test_health_counts(client: TestClient, picture: Picture) -> None:
    r = client.get("/health")
    assert r.status_code == 200
    body = HealthOut.model_validate(r.json())
    assert body.status == "ok"
    assert body.counts == {
        "tracks": len(picture.tracks),
        "observations": len(picture.observations),
        "alerts": len(picture.alerts),
        "incidents": 2,
    }


class BrokenStore:
    def count(self, table: str) -> int:
        raise OSError("disk gone")


class BrokenPipeline:
    store = BrokenStore()
    bus = None


def test_health_degraded_when_the_store_fails() -> None:
    from stratowatch.api import create_app

    with TestClient(create_app(BrokenPipeline(), freeze_gc=False)) as c:
        r = c.get("/health")
    assert r.status_code == 503 and r.json()["status"] == "degraded"


def _sample(text: str, name: str, **labels: Any) -> float:
    want = ",".join(f'{k}="{v}"' for k, v in labels.items())
    pattern = re.escape(name) + (r"\{" + re.escape(want) + r"\}" if labels else "") + r" (\S+)$"
    for line in text.splitlines():
        m = re.match(pattern, line)
        if m:
            return float(m.group(1))
    raise AssertionError(f"{name} {labels} not in metrics")


def test_metrics_text_format(client: TestClient, picture: Picture) -> None:
    for _ in range(3):
        assert client.get("/api/v1/tracks/100").status_code == 200
    client.get("/api/v1/tracks/999")
    r = client.get("/metrics")
    assert r.headers["content-type"].startswith("text/plain; version=0.0.4")
    text = r.text
    assert _sample(text, "stratowatch_tracks") == len(picture.tracks)
    assert _sample(text, "stratowatch_observations") == len(picture.observations)
    assert _sample(text, "stratowatch_alerts") == 2
    route = "/api/v1/tracks/{track_id}"
    assert _sample(text, "stratowatch_http_requests_total", method="GET", route=route, status=200) == 3
    assert _sample(text, "stratowatch_http_requests_total", method="GET", route=route, status=404) == 1
    hist = "stratowatch_http_request_duration_seconds"
    assert _sample(text, f"{hist}_count", method="GET", route=route) == 4
    assert _sample(text, f"{hist}_bucket", method="GET", route=route, le="+Inf") == 4
    buckets = [
        float(m)
        for m in re.findall(
            re.escape(f'{hist}_bucket{{method="GET",route="{route}",le="') + r'[^"]+"\} (\S+)', text
        )
    ]
    assert buckets == sorted(buckets)  # cumulative
    assert "# TYPE stratowatch_http_request_duration_seconds histogram" in text


def test_openapi_lists_every_resource(client: TestClient) -> None:
    spec = client.get("/openapi.json").json()
    paths = spec["paths"]
    for path in (
        "/health",
        "/metrics",
        "/api/v1/tracks",
        "/api/v1/tracks/{track_id}",
        "/api/v1/tracks/{track_id}/history",
        "/api/v1/history",
        "/api/v1/observations",
        "/api/v1/predictions/{track_id}",
        "/api/v1/predictions/{track_id}/cones",
        "/api/v1/arrivals",
        "/api/v1/alerts",
        "/api/v1/alerts/{alert_id}/acknowledge",
        "/api/v1/incidents",
        "/api/v1/incidents/{incident_id}/resolve",
        "/api/v1/sensors",
        "/api/v1/geofences",
        "/api/v1/geofences/{geofence_id}",
        "/api/v1/stream",
        "/api/v1/exports/tracks.{fmt}",
        "/api/v1/exports/predictions/{track_id}.{fmt}",
        "/api/v1/exports/incidents/{incident_id}.{fmt}",
    ):
        assert path in paths, path
    ok = paths["/api/v1/tracks"]["get"]["responses"]["200"]["content"]["application/json"]["schema"]
    assert ok["$ref"].endswith("Page_TrackOut_")
    track = spec["components"]["schemas"]["TrackOut"]["properties"]
    assert {"track_id", "lat_deg", "classification", "velocity_enu_mps"} <= set(track)
    params = {p["name"] for p in paths["/api/v1/tracks"]["get"]["parameters"]}
    assert params == {
        "status",
        "class",
        "min_alt_m",
        "max_alt_m",
        "bbox",
        "since_s",
        "identity",
        "limit",
        "offset",
    }
    assert "ErrorBody" in spec["components"]["schemas"]
    assert set(paths["/api/v1/geofences/{geofence_id}"]) == {"get", "put", "delete"}


def test_unknown_path_has_the_error_body(client: TestClient) -> None:
    r = client.get("/api/v1/nothing-here")
    assert r.status_code == 404
    assert r.json() == {
        "error": {"code": "not_found", "message": "no such path: /api/v1/nothing-here", "details": None}
    }


def test_serving_sets_and_restores_the_gil_switch_interval(pipeline: Any) -> None:
    import sys

    from stratowatch.api import create_app

    before = sys.getswitchinterval()
    app = create_app(pipeline, switch_interval_s=0.00025, freeze_gc=False)
    with TestClient(app, headers=bearer(app)) as c:
        assert c.get("/health").status_code == 200
        assert abs(sys.getswitchinterval() - 0.00025) < 1e-9
    assert sys.getswitchinterval() == before
