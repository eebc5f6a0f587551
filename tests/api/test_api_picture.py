"""The API's live picture: follows the pipeline's track events, falls back to the store, and
answers the same filters as the store."""

from __future__ import annotations

import time
from typing import Any

from api_helpers import T0, Picture, make_track
from fastapi.testclient import TestClient

from auth_helpers import bearer
from stratowatch.api import create_app
from stratowatch.model import ObjectClass
from stratowatch.service.pipeline import Pipeline
from stratowatch.service.serialize import track_to_json


def wait_for(client: TestClient, params: dict[str, Any], total: int) -> dict[str, Any]:
    deadline = time.monotonic() + 5
    while True:
        body = client.get("/api/v1/tracks", params=params).json()
        if body["total"] == total or time.monotonic() > deadline:
            return body
        time.sleep(0.02)


def test_picture_follows_track_events(pipeline: Pipeline, picture: Picture, store: Any) -> None:
    app = create_app(pipeline, picture_ttl_s=60.0, freeze_gc=False)
    with TestClient(app, headers=bearer(app)) as client:
        first = client.get("/api/v1/tracks", params={"limit": 1000}).json()
        assert first["total"] == len(picture.tracks)  # read from the store: no event yet
        step = [make_track(900 + i, time_s=T0 + 1, alt_m=19_000.0 + i) for i in range(3)]
        pipeline.bus.publish("tracks", {"time_s": T0 + 1, "tracks": [track_to_json(t) for t in step]})
        body = wait_for(client, {"limit": 1000}, 3)
        assert body["items"] == [track_to_json(t) for t in step]
        assert app.state.picture.bus_updates == 1
        assert client.get("/api/v1/tracks", params={"min_alt_m": 19_001}).json()["total"] == 2
        # ended tracks come from the store
        store.end_tracks([100, 101], T0 + 1)
        ended = client.get("/api/v1/tracks", params={"status": "ended"}).json()
        assert [t["track_id"] for t in ended["items"]] == [100, 101] and ended["total"] == 2


def test_picture_joins_the_cells_of_tracker_workers(pipeline: Pipeline, picture: Picture, store: Any) -> None:
    """Tracker workers over cells publish one event per cell: the picture is every cell's
    latest, a track handed between two cells listed once with its newer state."""
    app = create_app(pipeline, picture_ttl_s=60.0, freeze_gc=False)

    def cell_event(cell: int, t: float, tracks: list[Any], **kw: Any) -> None:
        before = app.state.picture.bus_updates
        docs = [track_to_json(x) for x in tracks]
        pipeline.bus.publish("tracks", {"time_s": t, "audience": "", "cell": cell, "tracks": docs, **kw})
        deadline = time.monotonic() + 5
        while app.state.picture.bus_updates == before and time.monotonic() < deadline:
            time.sleep(0.01)

    with TestClient(app, headers=bearer(app)) as client:
        client.get("/api/v1/tracks")  # the picture is started (and read from the store) first
        cell_event(1, T0 + 1, [make_track(901, time_s=T0 + 1), make_track(902, time_s=T0 + 1)])
        cell_event(2, T0 + 1, [make_track(903, time_s=T0 + 1)])
        body = wait_for(client, {"limit": 1000}, 3)
        assert sorted(t["track_id"] for t in body["items"]) == [901, 902, 903]
        # 902 crosses into cell 2: cell 2 reports it before cell 1's next event drops it
        cell_event(
            2, T0 + 2, [make_track(903, time_s=T0 + 2), make_track(902, time_s=T0 + 2, alt_m=21_000.0)]
        )
        body = client.get("/api/v1/tracks", params={"limit": 1000}).json()
        assert sorted(t["track_id"] for t in body["items"]) == [901, 902, 903]
        assert next(t for t in body["items"] if t["track_id"] == 902)["alt_m"] == 21_000.0
        cell_event(1, T0 + 3, [make_track(901, time_s=T0 + 3)], handed=[902])
        body = client.get("/api/v1/tracks", params={"limit": 1000}).json()
        assert sorted(t["track_id"] for t in body["items"]) == [901, 902, 903]
        # a whole picture (the single process) replaces the cells
        pipeline.bus.publish("tracks", {"time_s": T0 + 4, "tracks": [track_to_json(make_track(950))]})
        assert [t["track_id"] for t in wait_for(client, {"limit": 1000}, 1)["items"]] == [950]


def test_picture_rereads_the_store_when_the_bus_is_quiet(pipeline: Pipeline, store: Any) -> None:
    app = create_app(pipeline, picture_ttl_s=0.3, freeze_gc=False)
    with TestClient(app, headers=bearer(app)) as client:
        assert client.get("/api/v1/tracks").json()["total"] == 0
        store.write_track_states([make_track(5)])
        body = wait_for(client, {}, 1)
        assert [t["track_id"] for t in body["items"]] == [5]
        store.end_tracks([5], T0 + 10)
        assert wait_for(client, {}, 0)["total"] == 0  # ended: gone from the live picture


def test_picture_answers_like_the_store(client: TestClient, picture: Picture, store: Any) -> None:
    store.write_track_states(
        [
            make_track(500, lat_deg=55.0, lon_deg=179.5, label=ObjectClass.UNKNOWN),
            make_track(501, lat_deg=55.0, lon_deg=-179.5, identities=("aprs:N0CALL-11",)),
            make_track(502, lat_deg=55.0, lon_deg=170.0),
        ]
    )
    cases: list[dict[str, Any]] = [
        {"bbox": "50,179,60,-179"},  # across the antimeridian
        {"class": "unknown"},
        {"class": "balloon", "min_alt_m": 17_500},
        {"identity": "^aprs:"},
        {"status": "confirmed", "bbox": "40,-115,50,-100"},
        {"since_s": T0},
    ]
    for params in cases:
        body = client.get("/api/v1/tracks", params={**params, "limit": 1000}).json()
        filters = {
            "bbox": tuple(float(v) for v in params["bbox"].split(",")) if "bbox" in params else None,
            "cls": params.get("class"),
            "min_alt_m": params.get("min_alt_m"),
            "identity_regex": params.get("identity"),
            "status": params.get("status"),
            "since_s": params.get("since_s"),
        }
        expected = [t.track_id for t in store.tracks(**filters, limit=None) if t.status.name != "ENDED"]
        assert [t["track_id"] for t in body["items"]] == expected, params
        assert body["total"] == len(expected)
    across = client.get("/api/v1/tracks", params={"bbox": "50,179,60,-179"}).json()
    assert [t["track_id"] for t in across["items"]] == [500, 501]
