"""Tracks and observations over HTTP: pages, filters, one track, history, errors."""

from __future__ import annotations

from api_helpers import T0, Picture
from fastapi.testclient import TestClient
from pydantic import TypeAdapter

from stratowatch.api.models import ErrorBody, ObservationOut, Page, TrackOut
from stratowatch.service.serialize import track_to_json

TRACK_PAGE = TypeAdapter(Page[TrackOut])


def ids(body: dict) -> list[int]:
    return [t["track_id"] for t in body["items"]]


def test_tracks_page_and_total(client: TestClient, picture: Picture) -> None:
    r = client.get("/api/v1/tracks", params={"limit": 10, "offset": 5})
    assert r.status_code == 200
    body = r.json()
    TRACK_PAGE.validate_python(body)
    expected = sorted(t.track_id for t in picture.tracks)
    assert body["total"] == len(picture.tracks) == 36
    assert (body["limit"], body["offset"]) == (10, 5)
    assert ids(body) == expected[5:15]
    last = client.get("/api/v1/tracks", params={"limit": 10, "offset": 30}).json()
    assert ids(last) == expected[30:] and last["total"] == 36


def test_track_body_is_the_stored_track(client: TestClient, picture: Picture) -> None:
    track = next(t for t in picture.tracks if t.track_id == 205)
    body = client.get("/api/v1/tracks/205").json()
    assert body == track_to_json(track)
    assert body["classification"]["label"] == "aircraft"
    assert body["identities"] == ["icao:A00005"]
    assert body["speed_mps"] == track.speed_mps


def test_filters_class_altitude_box_time_identity_status(client: TestClient, picture: Picture) -> None:
    def query(**params: object) -> list[int]:
        r = client.get("/api/v1/tracks", params={"limit": 1000, **params})
        assert r.status_code == 200, r.text
        assert r.json()["total"] == len(r.json()["items"])
        return ids(r.json())

    assert query(**{"class": "balloon"}) == sorted([*picture.balloons])
    assert query(**{"class": "aircraft"}) == sorted(picture.aircraft)
    assert set(query(**{"class": "unknown"})) >= set(picture.unclassified)
    band = query(min_alt_m=17_500, max_alt_m=18_500)
    assert band == sorted(t.track_id for t in picture.tracks if 17_500 <= t.alt_m <= 18_500)
    assert band  # the band is not empty
    alaska = query(bbox="55,-160,65,-140")
    assert alaska == picture.unclassified
    assert query(identity="^icao:A0000[0-4]$") == [200, 201, 202, 203, 204]
    assert query(status="coasting") == [400]
    assert query(since_s=T0 + 1) == []


def test_track_404_and_validation_errors_share_one_body(client: TestClient, picture: Picture) -> None:
    r = client.get("/api/v1/tracks/999999")
    assert r.status_code == 404
    err = ErrorBody.model_validate(r.json()).error
    assert err.code == "not_found" and "999999" in err.message

    r = client.get("/api/v1/tracks", params={"limit": 5000})
    assert r.status_code == 422
    err = ErrorBody.model_validate(r.json()).error
    assert err.code == "invalid_request"
    assert err.details[0]["field"] == "query.limit"

    r = client.get("/api/v1/tracks", params={"class": "zeppelin"})
    assert r.status_code == 422 and r.json()["error"]["details"][0]["field"] == "query.class"

    r = client.get("/api/v1/tracks/abc")
    assert r.status_code == 422 and r.json()["error"]["details"][0]["field"] == "path.track_id"

    for bbox in ("1,2,3", "50,-100,40,-90", "a,b,c,d"):
        r = client.get("/api/v1/tracks", params={"bbox": bbox})
        assert r.status_code == 400, bbox
        assert r.json()["error"] == {
            "code": "invalid_parameter",
            "message": r.json()["error"]["message"],
            "details": {"parameter": "bbox"},
        }
    r = client.get("/api/v1/tracks", params={"identity": "("})
    assert r.status_code == 400 and "regular expression" in r.json()["error"]["message"]


def test_track_history_in_time_order(client: TestClient, picture: Picture) -> None:
    r = client.get(f"/api/v1/tracks/{picture.history_id}/history")
    body = r.json()
    TRACK_PAGE.validate_python(body)
    times = [t["time_s"] for t in body["items"]]
    assert times == sorted(times)
    assert [s.time_s for s in picture.history_states] == times[: len(picture.history_states)]
    window = client.get(
        f"/api/v1/tracks/{picture.history_id}/history", params={"t0": T0 - 700, "t1": T0 - 400}
    ).json()
    assert [t["time_s"] for t in window["items"]] == [T0 - 700, T0 - 600, T0 - 500, T0 - 400]
    assert client.get("/api/v1/tracks/424242/history").status_code == 404


def test_history_in_box(client: TestClient, picture: Picture) -> None:
    # The history track passed 45.0..45.9 N at -112 E; nothing else was south of 45.95 N there.
    r = client.get("/api/v1/history", params={"t0": T0 - 1000, "t1": T0, "bbox": "44.95,-112.5,45.45,-111.5"})
    assert r.status_code == 200, r.text
    lats = sorted(round(t["lat_deg"], 3) for t in r.json()["items"])
    assert lats == [45.0, 45.1, 45.2, 45.3, 45.4]
    assert {t["track_id"] for t in r.json()["items"]} == {picture.history_id}
    assert client.get("/api/v1/history", params={"t0": 1, "t1": 0, "bbox": "0,0,1,1"}).status_code == 400


def test_observations_filters(client: TestClient, picture: Picture) -> None:
    obs_page = TypeAdapter(Page[ObservationOut])
    body = client.get("/api/v1/observations", params={"limit": 7}).json()
    obs_page.validate_python(body)
    assert body["total"] == len(picture.observations) and len(body["items"]) == 7
    radar = client.get("/api/v1/observations", params={"sensor_id": "radar-a", "limit": 1000}).json()
    assert radar["total"] == 20 and {o["sensor_id"] for o in radar["items"]} == {"radar-a"}
    radar_page = client.get(
        "/api/v1/observations", params={"sensor_id": "radar-a", "limit": 5, "offset": 5}
    ).json()
    assert radar_page["total"] == 20 and radar_page["items"] == radar["items"][5:10]
    window = client.get("/api/v1/observations", params={"t0": T0 - 60, "t1": T0 - 51, "limit": 1000}).json()
    assert sorted(o["time_s"] for o in window["items"]) == [T0 - 60 + k for k in range(10)]
    north = client.get("/api/v1/observations", params={"bbox": "46.3,-113,47,-111", "limit": 1000}).json()
    assert sorted(round(o["value"][0], 2) for o in north["items"]) == [
        round(46.0 + 0.01 * k, 2) for k in range(30, 40)
    ]
    assert client.get("/api/v1/observations", params={"t0": 5, "t1": 1}).status_code == 400


def test_sensors(client: TestClient, picture: Picture) -> None:
    body = client.get("/api/v1/sensors").json()
    assert [s["sensor_id"] for s in body["items"]] == ["adsb-1", "radar-a"]
    adsb = body["items"][0]
    assert adsb["lat_deg"] is None and adsb["max_range_m"] is None  # no site, unlimited range
    radar = client.get("/api/v1/sensors/radar-a").json()
    assert (radar["lat_deg"], radar["lon_deg"], radar["owner"]) == (47.5, -111.2, "US")
    assert client.get("/api/v1/sensors/nope").json()["error"]["code"] == "not_found"
