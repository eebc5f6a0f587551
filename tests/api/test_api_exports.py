"""Exports: tracks, a prediction and an incident as GeoJSON, KML, CZML and CSV, parsed back."""

from __future__ import annotations

import csv
import io
import json
import xml.etree.ElementTree as ET

from api_helpers import T0, Picture
from fastapi.testclient import TestClient

KML = "{http://www.opengis.net/kml/2.2}"


def placemarks(text: str) -> list[ET.Element]:
    root = ET.fromstring(text)
    return list(root.iter(f"{KML}Placemark"))


def test_tracks_geojson_filters_and_history(client: TestClient, picture: Picture) -> None:
    r = client.get("/api/v1/exports/tracks.geojson", params={"class": "balloon"})
    assert r.status_code == 200
    assert r.headers["content-type"].startswith("application/geo+json")
    assert r.headers["content-disposition"] == 'attachment; filename="tracks.geojson"'
    fc = r.json()
    points = [f for f in fc["features"] if f["geometry"]["type"] == "Point"]
    assert sorted(f["properties"]["track_id"] for f in points) == sorted(picture.balloons)
    first = next(f for f in points if f["properties"]["track_id"] == 100)
    assert first["geometry"]["coordinates"] == [-112.0, 46.0, 17_000.0]
    assert first["properties"]["class"] == "balloon"
    with_history = client.get(
        "/api/v1/exports/tracks.geojson", params={"history": "true", "class": "balloon"}
    ).json()
    lines = [f for f in with_history["features"] if f["geometry"]["type"] == "LineString"]
    assert [f["properties"]["track_id"] for f in lines] == [100]  # the only track with a history
    assert len(lines[0]["geometry"]["coordinates"]) == len(picture.history_states) + 1


def test_tracks_kml_parses(client: TestClient, picture: Picture) -> None:
    r = client.get("/api/v1/exports/tracks.kml", params={"history": "true"})
    assert r.headers["content-type"].startswith("application/vnd.google-earth.kml+xml")
    marks = placemarks(r.text)
    points = [m for m in marks if m.find(f"{KML}Point") is not None]
    assert len(points) == len(picture.tracks)
    assert len([m for m in marks if m.find(f"{KML}LineString") is not None]) == 1
    coords = next(m for m in points if m.findtext(f"{KML}name", "").startswith("track 205 ("))
    lon, lat, alt = (float(v) for v in coords.findtext(f".//{KML}coordinates", "").split(","))
    assert (lon, lat, alt) == (-109.0, 45.5, 9_500.0)


def test_tracks_czml_document_first_and_positions(client: TestClient, picture: Picture) -> None:
    packets = json.loads(client.get("/api/v1/exports/tracks.czml", params={"history": "true"}).text)
    assert isinstance(packets, list) and packets[0]["id"] == "document" and packets[0]["version"] == "1.0"
    by_id = {p["id"]: p for p in packets[1:]}
    assert len(by_id) == len(picture.tracks)
    samples = by_id["track-100"]["position"]["cartographicDegrees"]
    assert len(samples) == 4 * (len(picture.history_states) + 1)
    assert samples[:4] == [0.0, -112.0, 45.0, 17_000.0]  # seconds since epoch, lon, lat, alt
    assert by_id["track-100"]["position"]["epoch"].startswith("2023-02-02T00:50:00")
    assert by_id["track-205"]["position"]["cartographicDegrees"] == [0.0, -109.0, 45.5, 9_500.0]


def test_tracks_csv(client: TestClient, picture: Picture) -> None:
    text = client.get("/api/v1/exports/tracks.csv", params={"class": "aircraft"}).text
    rows = list(csv.DictReader(io.StringIO(text)))
    assert len(rows) == len(picture.aircraft)
    row = next(r for r in rows if r["track_id"] == "203")
    assert (row["class"], row["lat_deg"], row["identities"]) == ("aircraft", "44.900000", "icao:A00003")
    assert row["time_utc"] == "2023-02-02T01:06:40Z"
    assert client.get("/api/v1/exports/tracks.shp").status_code == 422


def test_prediction_exports(client: TestClient, picture: Picture) -> None:
    fc = client.get("/api/v1/exports/predictions/100.geojson").json()
    assert (
        fc["properties"]["track_id"] == 100
        and fc["properties"]["arrivals"][0]["geofence_id"] == "mt-malmstrom"
    )
    assert len(fc["features"]) == 4
    marks = placemarks(client.get("/api/v1/exports/predictions/100.kml").text)
    assert sum(m.find(f"{KML}Polygon") is not None for m in marks) == 2
    assert sum(m.find(f"{KML}LineString") is not None for m in marks) == 2
    packets = json.loads(client.get("/api/v1/exports/predictions/100.czml").text)
    assert packets[0]["id"] == "document"
    assert sum("polygon" in p for p in packets) == 2 and sum("polyline" in p for p in packets) == 2
    rows = list(csv.DictReader(io.StringIO(client.get("/api/v1/exports/predictions/100.csv").text)))
    assert len(rows) == 4 + 4 + 5 + 3  # two 4-vertex cones, a 5-point and a 3-point path
    assert {r["kind"] for r in rows} == {"cone", "median_path", "deterministic_path"}
    assert client.get("/api/v1/exports/predictions/201.kml").status_code == 404


def test_incident_exports(client: TestClient, picture: Picture) -> None:
    fc = client.get("/api/v1/exports/incidents/inc-1.geojson").json()
    assert fc["properties"]["incident"]["incident_id"] == "inc-1"
    assert len(fc["properties"]["alerts"]) == 2
    assert sorted({f["properties"]["track_id"] for f in fc["features"]}) == [100, 300]
    assert placemarks(client.get("/api/v1/exports/incidents/inc-1.kml").text)
    packets = json.loads(client.get("/api/v1/exports/incidents/inc-1.czml").text)
    assert packets[0]["id"] == "document" and {p["id"] for p in packets[1:]} == {"track-100", "track-300"}
    rows = list(csv.DictReader(io.StringIO(client.get("/api/v1/exports/incidents/inc-1.csv").text)))
    events = [r["event"] for r in rows]
    assert events.count("alert") == 2 and events.count("history") == 1
    assert events.count("state") == len(picture.history_states) + 1 + 1  # track 100 history + track 300
    times = [float(r["time_s"]) for r in rows]
    assert times == sorted(times) and times[-1] == T0
    assert client.get("/api/v1/exports/incidents/nope.csv").status_code == 404
