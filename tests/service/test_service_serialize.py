"""JSON forms round-trip every field exactly and are strict JSON (no NaN/Infinity tokens)."""

from __future__ import annotations

import json
import math

import pytest

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
from stratowatch.service import serialize as s


def _track(classification: Classification | None) -> Track:
    return Track(
        track_id=42,
        time_s=1675274400.25,
        status=TrackStatus.COASTING,
        lat_deg=48.123456789,
        lon_deg=-110.987654321,
        alt_m=18750.5,
        velocity_enu_mps=(12.5, -3.25, 0.1),
        position_sigma_m=(150.0, 160.0, 300.0),
        model_probabilities={"aircraft_cv": 0.1, "aircraft_manoeuvre": 0.05, "balloon_drift": 0.85},
        identities=("aprs:N0CALL-11",),
        sensors=("aprs", "radar-ca-1"),
        first_time_s=1675270000.0,
        last_update_s=1675274390.0,
        n_updates=37,
        classification=classification,
    )


def _strict(doc: object) -> object:
    return json.loads(json.dumps(doc, allow_nan=False))


def test_track_round_trips_with_classification_and_reasons() -> None:
    c = Classification(
        ObjectClass.BALLOON,
        0.97,
        {"balloon": 0.97, "aircraft": 0.03},
        ("13 m/s ground speed: balloon-like", "drifts with the 70 hPa wind within 2 m/s"),
    )
    t = _track(c)
    doc = _strict(s.track_to_json(t))
    assert isinstance(doc, dict)
    assert doc["status"] == "coasting"
    assert doc["classification"]["label"] == "balloon"
    assert doc["speed_mps"] == pytest.approx(math.hypot(12.5, -3.25))
    assert s.track_from_json(doc) == t
    assert s.track_from_json(_strict(s.track_to_json(_track(None)))) == _track(None)


def test_live_tracks_carry_their_velocity_uncertainty_which_shrinks_with_updates() -> None:
    """A partner node fuses tracks predicted to one time: a young track's velocity is poorly
    known, and says so (without it the fusion assumed 5 m/s and split young tracks off)."""
    import numpy as np

    from stratowatch.model import ObservationBatch
    from stratowatch.tracking import Tracker

    tracker = Tracker()
    sigmas = []
    for k in range(30):
        t = 1.7e9 + 10.0 * k
        obs = Observation(
            t, "gnss", MeasurementKind.GEODETIC, (45.0, -100.0 + 0.003 * k, 20_000.0), (30.0, 30.0, 50.0)
        )
        table = tracker.step_batch(t, ObservationBatch.from_observations([obs], tracker.identities))
        tracks = tracker.to_tracks(table)
        if tracks:
            (track,) = tracks
            assert track.velocity_sigma_mps is not None
            sigmas.append(float(np.hypot(*track.velocity_sigma_mps[:2])))
            doc = _strict(s.track_to_json(track))
            assert doc["velocity_sigma_mps"] == pytest.approx(list(track.velocity_sigma_mps))
            assert s.track_from_json(doc).velocity_sigma_mps == pytest.approx(track.velocity_sigma_mps)
    assert len(sigmas) >= 20 and sigmas[0] > 3 * sigmas[-1]
    assert s.track_to_json(_track(None))["velocity_sigma_mps"] is None  # a stored track has none


def test_observation_round_trips_including_missing_values() -> None:
    full = Observation(
        time_s=1.5,
        sensor_id="adsb-1",
        kind=MeasurementKind.GEODETIC,
        value=(48.0, -110.0, 11000.0),
        sigma=(10.0, 15.0),
        velocity_enu_mps=(200.0, 10.0, -1.0),
        velocity_sigma_mps=2.0,
        identity="icao:406B90",
        callsign="BAW123",
        category="A3",
        releasable_to=frozenset({"CAN", "USA"}),
        originator="USA",
        source=SourceRef("feed.sbs", 12),
    )
    bare = Observation(1.0, "r1", MeasurementKind.POLAR, (1000.0, 45.0, 2.0), (50.0, 0.1, 0.2))
    assert s.observation_from_json(_strict(s.observation_to_json(full))) == full  # type: ignore[arg-type]
    back = s.observation_from_json(_strict(s.observation_to_json(bare)))  # type: ignore[arg-type]
    assert math.isnan(back.velocity_sigma_mps)  # NaN != NaN: compare the rest field by field
    assert (back.time_s, back.kind, back.value, back.sigma, back.velocity_enu_mps, back.releasable_to) == (
        1.0, MeasurementKind.POLAR, (1000.0, 45.0, 2.0), (50.0, 0.1, 0.2), None, frozenset({"PUBLIC"})
    )  # fmt: skip
    assert s.observation_to_json(bare)["velocity_sigma_mps"] is None
    assert s.observation_to_json(full)["kind"] == "geodetic"
    assert s.observation_to_json(full)["releasable_to"] == ["CAN", "USA"]


def test_sensor_geofence_alert_incident_round_trip() -> None:
    sensors = [Sensor("adsb"), Sensor("r1", "CAN", "radar", 50.0, -113.0, 900.0, 400_000.0, name="R")]
    for sen in sensors:
        doc = _strict(s.sensor_to_json(sen))
        back = s.sensor_from_json(doc)  # type: ignore[arg-type]
        assert back.sensor_id == sen.sensor_id and back.max_range_m == sen.max_range_m
        assert (math.isnan(back.lat_deg) and math.isnan(sen.lat_deg)) or back.lat_deg == sen.lat_deg
    g = Geofence("mt", "Malmstrom", "circle", ((47.5, -111.2),), 50_000.0, severity="critical", source="x")
    gd = _strict(s.geofence_to_json(g))
    assert gd["min_alt_m"] is None and gd["max_alt_m"] is None  # type: ignore[index]
    assert s.geofence_from_json(gd) == g  # type: ignore[arg-type]
    a = Alert(
        "geofence_enter:42:mt", 10.0, "geofence_enter", "critical", "track 42 entered Malmstrom", 42, "mt",
        {"probability": 0.4}, "inc-1", "alice", 12.0,
    )  # fmt: skip
    assert s.alert_from_json(_strict(s.alert_to_json(a))) == a  # type: ignore[arg-type]
    i = Incident("inc-1", 10.0, "tracking", "Balloon over Montana", (42,), (a.alert_id,),
                 ((10.0, "system", "opened"), (12.0, "alice", "acknowledged")), 12.0)  # fmt: skip
    assert s.incident_from_json(_strict(s.incident_to_json(i))) == i  # type: ignore[arg-type]


def test_bad_documents_name_the_field() -> None:
    with pytest.raises(s.SerializeError, match="'status'"):
        s.track_from_json({**s.track_to_json(_track(None)), "status": "flying"})
    with pytest.raises(s.SerializeError, match="'lat_deg'"):
        s.track_from_json({**s.track_to_json(_track(None)), "lat_deg": "north"})
    with pytest.raises(s.SerializeError, match="'kind'"):
        s.geofence_from_json({"geofence_id": "x", "kind": "blob", "coordinates": []})
    with pytest.raises(s.SerializeError, match="observation"):
        s.observation_from_json(
            {"time_s": 1.0, "sensor_id": "a", "kind": "geodetic", "value": [1.0, 2.0], "sigma": [1.0]}
        )
