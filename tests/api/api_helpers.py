"""Helpers for the API tests: a small air picture to fill a store with, and a live server."""

from __future__ import annotations

import contextlib
import dataclasses
import socket
import threading
import time
from collections.abc import Iterator
from pathlib import Path
from typing import Any

from stratowatch.model import (
    Alert,
    Classification,
    Geofence,
    Incident,
    MeasurementKind,
    ObjectClass,
    Observation,
    Sensor,
    SourceRef,
    Track,
    TrackStatus,
)

REPO_ROOT = Path(__file__).resolve().parents[2]
SHARED_DATA = REPO_ROOT.parent / "shared" / "data"

T0 = 1_675_300_000.0  # 2023-02-02 01:06:40 UTC, the Montana sighting day


def make_track(
    track_id: int,
    *,
    time_s: float = T0,
    lat_deg: float = 47.5,
    lon_deg: float = -111.2,
    alt_m: float = 18_000.0,
    label: ObjectClass | None = ObjectClass.BALLOON,
    status: TrackStatus = TrackStatus.CONFIRMED,
    identities: tuple[str, ...] = (),
    velocity_enu_mps: tuple[float, float, float] = (8.0, 2.0, 0.0),
) -> Track:
    classification = (
        None
        if label is None
        else Classification(label, 0.8, {label.name.lower(): 0.8}, (f"looks like a {label.name.lower()}",))
    )
    return Track(
        track_id=track_id,
        time_s=time_s,
        status=status,
        lat_deg=lat_deg,
        lon_deg=lon_deg,
        alt_m=alt_m,
        velocity_enu_mps=velocity_enu_mps,
        position_sigma_m=(150.0, 150.0, 300.0),
        model_probabilities={"cv": 0.7, "ct": 0.3},
        identities=identities,
        sensors=("radar-a",),
        first_time_s=time_s - 600.0,
        last_update_s=time_s,
        n_updates=20,
        classification=classification,
    )


def prediction_payload(track: Track) -> dict[str, Any]:
    """A stored prediction shaped as the pipeline stores it: GeoJSON of paths and cones, arrivals."""
    lon, lat, alt = track.lon_deg, track.lat_deg, track.alt_m
    path = [[lon + 0.5 * k, lat + 0.1 * k, alt] for k in range(5)]
    cone = [[lon + 2.0, lat - 0.5], [lon + 2.5, lat], [lon + 2.0, lat + 0.5], [lon + 1.5, lat]]
    features = [
        {
            "type": "Feature",
            "geometry": {"type": "Polygon", "coordinates": [cone]},
            "properties": {
                "kind": "cone",
                "probability": 0.5,
                "time_utc": "2023-02-02T07:06:40Z",
                "lead_h": 6.0,
            },
        },
        {
            "type": "Feature",
            "geometry": {"type": "Polygon", "coordinates": [[[x + 0.1, y] for x, y in cone]]},
            "properties": {
                "kind": "cone",
                "probability": 0.9,
                "time_utc": "2023-02-02T07:06:40Z",
                "lead_h": 6.0,
            },
        },
        {
            "type": "Feature",
            "geometry": {"type": "LineString", "coordinates": path},
            "properties": {"kind": "median_path", "start_utc": "2023-02-02T01:06:40Z"},
        },
        {
            "type": "Feature",
            "geometry": {"type": "LineString", "coordinates": path[:3]},
            "properties": {"kind": "deterministic_path", "start_utc": "2023-02-02T01:06:40Z"},
        },
    ]
    return {
        "time_s": track.time_s,
        "geojson": {"type": "FeatureCollection", "features": features, "properties": {"members": 50}},
        "arrivals": [
            {
                "geofence_id": "mt-malmstrom",
                "probability": 0.62,
                "earliest_s": T0 + 3600,
                "median_s": T0 + 7200,
            },
            {"geofence_id": "nd-minot", "probability": 0.1, "earliest_s": T0 + 20000, "median_s": None},
        ],
    }


@dataclasses.dataclass
class Picture:
    """What :func:`fill` wrote, for the tests to compare against."""

    tracks: list[Track]
    balloons: list[int]
    aircraft: list[int]
    unclassified: list[int]
    history_id: int
    history_states: list[Track]
    observations: list[Observation]
    alerts: list[Alert]
    incident: Incident


def fill(store: Any) -> Picture:
    """A small air picture over Montana: 12 balloons, 20 aircraft, 3 unclassified tracks, one
    track with a 10-state history, observations of two sensors, two alerts and an incident."""
    tracks: list[Track] = []
    for i in range(12):
        tracks.append(
            make_track(100 + i, lat_deg=46.0 + 0.2 * i, lon_deg=-112.0 + 0.1 * i, alt_m=17_000 + 200 * i)
        )
    for i in range(20):
        tracks.append(
            make_track(
                200 + i,
                lat_deg=44.0 + 0.3 * i,
                lon_deg=-108.0 - 0.2 * i,
                alt_m=9_000 + 100 * i,
                label=ObjectClass.AIRCRAFT,
                identities=(f"icao:A{i:05X}",),
                velocity_enu_mps=(200.0, 30.0, 0.0),
            )
        )
    for i in range(3):
        tracks.append(make_track(300 + i, lat_deg=60.0 + i, lon_deg=-150.0, alt_m=12_000, label=None))
    tracks.append(make_track(400, status=TrackStatus.COASTING, lat_deg=48.0, lon_deg=-110.0, alt_m=19_000))
    history_id = 100
    states = [
        dataclasses.replace(
            tracks[0], time_s=T0 - 1000 + 100 * k, lat_deg=45.0 + 0.1 * k, last_update_s=T0 - 1000 + 100 * k
        )
        for k in range(10)
    ]
    for s in states:  # track 100's past, then the current picture
        store.write_track_states([s])
    store.write_track_states(tracks)
    observations = [
        Observation(
            time_s=T0 - 60 + k,
            sensor_id="radar-a" if k % 2 == 0 else "adsb-1",
            kind=MeasurementKind.GEODETIC,
            value=(46.0 + 0.01 * k, -112.0, 17_000.0),
            sigma=(100.0, 200.0),
            identity=None if k % 2 == 0 else "icao:A00001",
            source=SourceRef("feed", k),
        )
        for k in range(40)
    ]
    store.write_observations(observations)
    store.write_sensor(
        Sensor("radar-a", owner="US", kind="radar", lat_deg=47.5, lon_deg=-111.2, name="Radar A")
    )
    store.write_sensor(Sensor("adsb-1", owner="CA", kind="adsb"))
    store.write_geofence(
        Geofence(
            "mt-malmstrom",
            "Malmstrom AFB",
            "circle",
            ((47.505, -111.187),),
            radius_m=50_000.0,
            severity="critical",
        )
    )
    alerts = [
        Alert(
            "geofence_enter:100:mt-malmstrom",
            T0 - 30,
            "geofence_enter",
            "critical",
            "track 100 entered Malmstrom AFB",
            track_id=100,
            geofence_id="mt-malmstrom",
            details={"alt_m": 17_000.0},
            incident_id="inc-1",
        ),
        Alert(
            "new_unidentified:300",
            T0 - 20,
            "new_unidentified",
            "warning",
            "new unidentified object at 12000 m",
            track_id=300,
            incident_id="inc-1",
        ),
    ]
    for a in alerts:
        store.write_alert(a)
    incident = Incident(
        "inc-1",
        T0 - 30,
        "open",
        "Balloon over Malmstrom",
        track_ids=(100, 300),
        alert_ids=tuple(a.alert_id for a in alerts),
        history=((T0 - 30, "system", "opened"),),
        updated_s=T0 - 20,
    )
    store.write_incident(incident)
    store.write_incident(Incident("inc-0", T0 - 9000, "resolved", "False alarm", updated_s=T0 - 8000))
    store.write_prediction(100, T0, prediction_payload(tracks[0]))
    return Picture(
        tracks=tracks,
        balloons=[
            t.track_id for t in tracks if t.classification and t.classification.label == ObjectClass.BALLOON
        ],
        aircraft=[
            t.track_id for t in tracks if t.classification and t.classification.label == ObjectClass.AIRCRAFT
        ],
        unclassified=[t.track_id for t in tracks if t.classification is None],
        history_id=history_id,
        history_states=states,
        observations=observations,
        alerts=alerts,
        incident=incident,
    )


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return int(s.getsockname()[1])


@contextlib.contextmanager
def live_server(app: Any) -> Iterator[str]:
    """Serve ``app`` with uvicorn on a free loopback port in a thread; yields the base URL."""
    import uvicorn

    port = free_port()
    server = uvicorn.Server(
        uvicorn.Config(app, host="127.0.0.1", port=port, log_level="warning", timeout_graceful_shutdown=1)
    )
    thread = threading.Thread(target=server.run, daemon=True)
    thread.start()
    deadline = time.monotonic() + 10
    while not server.started:
        if time.monotonic() > deadline or not thread.is_alive():
            raise RuntimeError("uvicorn did not start")
        time.sleep(0.02)
    try:
        yield f"http://127.0.0.1:{port}"
    finally:
        server.should_exit = True
        thread.join(10)
