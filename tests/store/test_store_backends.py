"""The Store contract, asserted identically on SQLite and on PostgreSQL + PostGIS."""

from __future__ import annotations

import math
import pickle
import threading
from dataclasses import replace
from typing import Any

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
from stratowatch.store import RetentionSettings, Store, StoreError, open_store


def obs(t: float, lat: float, lon: float, sensor: str = "s1", **kw: Any) -> Observation:
    return Observation(t, sensor, MeasurementKind.GEODETIC, (lat, lon, 18_000.0), (50.0, 80.0), **kw)


def same_obs(a: Observation, b: Observation) -> bool:
    if math.isnan(a.velocity_sigma_mps) and math.isnan(b.velocity_sigma_mps):
        a, b = replace(a, velocity_sigma_mps=0.0), replace(b, velocity_sigma_mps=0.0)
    return a == b


def track(
    tid: int,
    t: float,
    lat: float,
    lon: float,
    alt: float = 18_000.0,
    *,
    status: TrackStatus = TrackStatus.CONFIRMED,
    identities: tuple[str, ...] = (),
    label: ObjectClass | None = ObjectClass.BALLOON,
) -> Track:
    cls = (
        None
        if label is None
        else Classification(
            label,
            0.875,
            {"balloon": 0.875, "aircraft": 0.125},
            ("11 m/s ground speed: balloon-like", "20 km"),
        )
    )
    return Track(
        track_id=tid,
        time_s=t,
        status=status,
        lat_deg=lat,
        lon_deg=lon,
        alt_m=alt,
        velocity_enu_mps=(3.25, -11.5, 0.125),
        position_sigma_m=(40.5, 41.25, 60.0),
        model_probabilities={"balloon_drift": 0.9125, "aircraft_cruise": 0.0875},
        identities=identities,
        sensors=("radar-a", "sonde"),
        first_time_s=100.0,
        last_update_s=t,
        n_updates=int(t),
        classification=cls,
    )


# --------------------------------------------------------------------------- observations


def test_observations_round_trip_exactly_with_filters(store: Store) -> None:
    full = Observation(
        10.0,
        "radar-a",
        MeasurementKind.POLAR_HEIGHT,
        (1000.0, 45.0, 9000.0),
        (50.0, 0.1, 100.0),
        identity="icao:3C660C",
        callsign="DLH65A",
        releasable_to=frozenset({"NO", "NATO"}),
        originator="NO",
        source=SourceRef("f.raw", 3),
    )
    ground = Observation(
        5.0, "sightings", MeasurementKind.GROUND_2D, (45.9, -112.5), (30_000.0,), category="sighting"
    )
    sonde = obs(
        7.5,
        37.7,
        -122.2,
        "sonde",
        velocity_enu_mps=(1.0, 2.0, 5.0),
        velocity_sigma_mps=1.0,
        identity="sonde:S1",
    )
    assert store.write_observations([full, ground, sonde]) == 3
    assert store.write_observations([]) == 0
    back = store.observations()
    assert [o.time_s for o in back] == [5.0, 7.5, 10.0]
    assert same_obs(back[0], ground) and same_obs(back[1], sonde) and same_obs(back[2], full)
    assert back[0].velocity_enu_mps is None and math.isnan(back[0].velocity_sigma_mps)
    assert [o.time_s for o in store.observations(t0=7.5, t1=10.0)] == [7.5, 10.0]  # inclusive window
    assert [o.sensor_id for o in store.observations(sensor_id="sonde")] == ["sonde"]
    # Boxes match positioned kinds only (the polar plot has no position of its own).
    assert [o.time_s for o in store.observations(bbox=(30.0, -130.0, 50.0, -100.0))] == [5.0, 7.5]
    assert [o.time_s for o in store.observations(bbox=(40.0, -130.0, 50.0, -100.0))] == [5.0]
    assert [o.time_s for o in store.observations(limit=1, offset=1)] == [7.5]
    assert store.count_observations(bbox=(30.0, -130.0, 50.0, -100.0), t0=6.0) == 1
    assert store.count("observations") == 3


def test_boxes_are_exact_at_the_edges_and_cross_the_antimeridian(store: Store) -> None:
    # An R*Tree keeps 32-bit boxes; 1e-7 degrees (1 cm) outside must still be outside.
    store.write_observations(
        [
            obs(1.0, 52.0, 179.5),  # Aleutians, east of the antimeridian... in eastern longitudes
            obs(2.0, 52.0, -179.5),
            obs(3.0, 52.0, 170.0 - 1e-7),
            obs(4.0, 52.0, 170.0),  # on the edge: inside
            obs(5.0, 60.0 + 1e-7, 175.0),
            obs(6.0, 52.0, -100.0),
        ]
    )
    box = (50.0, 170.0, 60.0, -170.0)  # min_lon > max_lon: across the antimeridian
    assert [o.time_s for o in store.observations(bbox=box)] == [1.0, 2.0, 4.0]
    assert [o.time_s for o in store.observations(bbox=(50.0, -180.0, 60.0, -170.0))] == [2.0]
    with pytest.raises(ValueError, match="latitudes"):
        store.observations(bbox=(60.0, 0.0, 50.0, 1.0))


def test_radar_plots_are_placed_from_their_sensor_site(store: Store) -> None:
    store.write_sensor(Sensor("radar-n", "NO", "radar", 69.5, 18.9, 120.0))
    plots = [
        # 10 km east at 5 km height, and 20 km north at 10 degrees elevation.
        Observation(
            1.0, "radar-n", MeasurementKind.POLAR_HEIGHT, (10_000.0, 90.0, 5000.0), (50.0, 0.1, 100.0)
        ),
        Observation(2.0, "radar-n", MeasurementKind.POLAR, (20_000.0, 0.0, 10.0), (50.0, 0.1, 0.1)),
        Observation(
            3.0, "radar-x", MeasurementKind.POLAR, (20_000.0, 0.0, 10.0), (50.0, 0.1, 0.1)
        ),  # no site
    ]
    store.write_observations(plots)
    # 10 km slant range to 4.9 km above the site is 8.7 km east: 0.224 degrees of longitude at 69.5 N;
    # 20 km at 10 degrees elevation is 19.7 km north: 0.177 degrees of latitude.
    assert [o.time_s for o in store.observations(bbox=(69.49, 19.11, 69.51, 19.14))] == [1.0]
    assert [o.time_s for o in store.observations(bbox=(69.67, 18.89, 69.68, 18.91))] == [2.0]
    assert [o.time_s for o in store.observations(bbox=(-90.0, -180.0, 90.0, 180.0))] == [1.0, 2.0]
    assert same_obs(store.observations(t0=3.0)[0], plots[2])  # kept, just not placed


# --------------------------------------------------------------------------- tracks


def test_track_states_current_history_and_filters(store: Store) -> None:
    store.write_track_states(
        [
            track(1, 110.0, 45.0, -110.0, identities=("aprs:N0CALL-11",)),
            track(
                2,
                110.0,
                47.0,
                -100.0,
                11_000.0,
                identities=("icao:406B90", "aprs:X-1"),
                label=ObjectClass.AIRCRAFT,
            ),
        ]
    )
    store.write_track_states([track(1, 120.0, 45.1, -110.1, identities=("aprs:N0CALL-11",))])
    store.write_track_states([track(3, 125.0, 30.0, -90.0, 500.0, status=TrackStatus.TENTATIVE, label=None)])
    store.write_track_states([track(1, 115.0, 44.9, -109.9)])  # late, out of order: history only

    assert store.track(1) == track(1, 120.0, 45.1, -110.1, identities=("aprs:N0CALL-11",))
    assert store.track(99) is None
    assert [t.track_id for t in store.tracks()] == [1, 2, 3]
    assert [t.time_s for t in store.track_history(1)] == [110.0, 115.0, 120.0]
    assert [t.time_s for t in store.track_history(1, t0=112.0, t1=120.0)] == [115.0, 120.0]
    assert store.track_history(1)[1] == track(1, 115.0, 44.9, -109.9)

    assert [t.track_id for t in store.tracks(status="confirmed")] == [1, 2]
    assert [t.track_id for t in store.tracks(status="TENTATIVE")] == [3]
    assert [t.track_id for t in store.tracks(cls="aircraft")] == [2]
    assert [t.track_id for t in store.tracks(cls="unknown")] == [3]  # unclassified counts as unknown
    assert [t.track_id for t in store.tracks(min_alt_m=10_000.0, max_alt_m=15_000.0)] == [2]
    assert [t.track_id for t in store.tracks(bbox=(44.0, -111.0, 48.0, -99.0))] == [1, 2]
    assert store.tracks(bbox=(44.95, -110.05, 45.05, -109.95)) == []  # track 1 moved on from there
    assert [t.track_id for t in store.tracks(bbox=(45.05, -110.15, 45.15, -110.05))] == [1]
    assert [t.track_id for t in store.tracks(since_s=120.0)] == [1, 3]
    assert [t.track_id for t in store.tracks(identity_regex="^aprs:")] == [1, 2]  # any identity
    assert [t.track_id for t in store.tracks(identity_regex="406B9")] == [2]
    assert [t.track_id for t in store.tracks(limit=2, offset=1)] == [2, 3]
    assert store.count_tracks(status="confirmed") == 2
    with pytest.raises(ValueError, match="identity_regex"):
        store.tracks(identity_regex="(")
    with pytest.raises(ValueError, match="status 'lost'"):
        store.tracks(status="lost")

    store.end_tracks([2], 130.0)
    assert store.track(2) is not None and store.track(2).status == TrackStatus.ENDED  # type: ignore[union-attr]
    assert [t.track_id for t in store.tracks(status="ended")] == [2]
    assert (store.count("tracks"), store.count("track_states")) == (3, 5)


def test_history_in_box_by_time_window(store: Store) -> None:
    states = [track(1, 100.0 + 10 * i, 45.0 + 0.1 * i, -110.0) for i in range(10)]
    states += [track(2, 100.0 + 10 * i, 45.5, -110.0 + 0.1 * i) for i in range(10)]
    store.write_track_states(states)
    got = store.history_in_box(120.0, 160.0, (45.25, -110.05, 45.55, -109.75))
    # In the window (i = 2..6): track 1 is in the box at i = 3..5 (lat 45.3..45.5), track 2 at i = 2.
    assert [(t.track_id, t.time_s) for t in got] == [(2, 120.0), (1, 130.0), (1, 140.0), (1, 150.0)]
    assert got[1] == states[3]
    assert len(store.history_in_box(0.0, 1e9, (-90.0, -180.0, 90.0, 180.0), limit=5)) == 5


# --------------------------------------------------------------------------- predictions, alerts, incidents


def test_latest_prediction(store: Store) -> None:
    assert store.prediction(7) is None
    store.write_prediction(7, 100.0, {"arrivals": [], "cone": {"type": "Polygon"}})
    store.write_prediction(7, 200.0, {"arrivals": [{"geofence_id": "mt", "probability": 0.4}]})
    store.write_prediction(7, 150.0, {"arrivals": "older"})
    store.write_prediction(8, 300.0, {"arrivals": "other track"})
    assert store.prediction(7) == {"arrivals": [{"geofence_id": "mt", "probability": 0.4}]}
    assert store.count("predictions") == 4


def test_alerts_upsert_and_filters(store: Store) -> None:
    a = Alert(
        "geofence_enter:1:mt",
        100.0,
        "geofence_enter",
        "critical",
        "track 1 entered Malmstrom",
        track_id=1,
        geofence_id="mt",
        details={"alt_m": 18000.0, "sites": ["a", "b"]},
        releasable_to=frozenset({"US", "CA"}),
    )
    b = Alert("track_lost:2", 200.0, "track_lost", "warning", "track 2 lost", track_id=2)
    store.write_alert(a)
    store.write_alert(b)
    assert store.alert(a.alert_id) == a
    assert [x.alert_id for x in store.alerts()] == [b.alert_id, a.alert_id]  # newest first
    assert [x.alert_id for x in store.alerts(rule="geofence_enter")] == [a.alert_id]
    assert [x.alert_id for x in store.alerts(since_s=150.0)] == [b.alert_id]
    acked = replace(a, acknowledged_by="ops1", acknowledged_s=130.0, incident_id="inc-1")
    store.write_alert(acked)  # upsert by id
    assert store.count("alerts") == 2 and store.alert(a.alert_id) == acked
    assert [x.alert_id for x in store.alerts(acknowledged=True)] == [a.alert_id]
    assert [x.alert_id for x in store.alerts(acknowledged=False)] == [b.alert_id]
    assert store.count_alerts(acknowledged=False) == 1
    assert store.alert("nope") is None


def test_incidents_upsert_and_status(store: Store) -> None:
    i = Incident(
        "inc-1", 100.0, "open", "Balloon over Montana", (1, 4), ("a1",), ((100.0, "system", "opened"),), 100.0
    )
    j = Incident("inc-2", 150.0, "open", "Unknown object", (2,), (), (), 150.0, frozenset({"US"}))
    store.write_incident(i)
    store.write_incident(j)
    assert store.incident("inc-1") == i and store.incident("inc-2") == j
    resolved = replace(
        i, status="resolved", updated_s=300.0, history=(*i.history, (300.0, "ops1", "resolved: landed"))
    )
    store.write_incident(resolved)
    assert [x.incident_id for x in store.incidents()] == ["inc-1", "inc-2"]  # most recently updated first
    assert store.incidents(status="resolved") == [resolved]
    assert store.count_incidents(status="open") == 1


# --------------------------------------------------------------------------- sensors, partners, geofences


def test_sensors_partners_geofences_audit(store: Store) -> None:
    radar = Sensor(
        "radar-a", "NO", "radar", 69.5, 18.9, 120.0, 250_000.0, 70.0, releasable_to=frozenset({"NO"})
    )
    web = Sensor("sightings")  # NaN site and infinite range must come back as they were
    store.write_sensor(radar)
    store.write_sensor(web)
    store.write_sensor(replace(radar, p_detect=0.8))
    got = store.sensors()
    assert [s.sensor_id for s in got] == ["radar-a", "sightings"]
    assert got[0] == replace(radar, p_detect=0.8)
    assert math.isnan(got[1].lat_deg) and got[1].max_range_m == math.inf and not got[1].has_site

    store.write_partner("ca", {"name": "Canada", "labels": ["CA", "NATO"]})
    assert [(p["partner_id"], p["details"]["name"]) for p in store.partners()] == [("ca", "Canada")]

    ring = Geofence(
        "mt", "Malmstrom", "polygon", ((47.0, -112.0), (48.0, -112.0), (48.0, -110.0)), source="public"
    )
    circle = Geofence(
        "minot", "Minot AFB", "circle", ((48.42, -101.36),), radius_m=50_000.0, max_alt_m=30_000.0
    )
    store.write_geofence(ring)
    store.write_geofence(circle)
    assert store.geofences() == [circle, ring] and store.geofences()[1].min_alt_m == -math.inf  # by id
    assert store.delete_geofence("mt") is True and store.delete_geofence("mt") is False
    assert store.geofences() == [circle]

    store.audit("ops1", "acknowledge", {"alert_id": "a1"}, time_s=10.0)
    store.audit("ops2", "resolve", {"incident_id": "inc-1", "note": "landed"}, time_s=20.0)
    log = store.audit_log()
    assert [(r["actor"], r["action"], r["time_s"]) for r in log] == [
        ("ops2", "resolve", 20.0),
        ("ops1", "acknowledge", 10.0),
    ]
    assert log[1]["details"] == {"alert_id": "a1"} and len(store.audit_log(limit=1, offset=1)) == 1


# --------------------------------------------------------------------------- state, retention, housekeeping


def test_tracker_state_round_trip_resumes_identically(store: Store) -> None:
    from stratowatch.tracking import Tracker

    def scan(i: int) -> list[Observation]:
        return [
            obs(10.0 * i, 45.0 + 0.001 * i, -110.0, identity="aprs:N0CALL-11"),
            obs(10.0 * i, 46.0, -111.0 + 0.002 * i, identity="icao:406B90"),
        ]

    tracker = Tracker()
    for i in range(5):
        tracker.step(10.0 * i, scan(i))
    assert store.load_state("tracker") is None
    store.save_state("tracker", b"an older snapshot")
    store.save_state("tracker", pickle.dumps(tracker))
    restored = pickle.loads(store.load_state("tracker") or b"")
    for i in range(5, 8):
        expected = tracker.step(10.0 * i, scan(i))
        got = restored.step(10.0 * i, scan(i))
    assert len(expected) == 2 and got == expected
    assert store.count("state") == 1


def test_retention_deletes_by_age_per_table(url: str) -> None:
    day = 86_400.0
    settings = RetentionSettings(
        observations_max_age_s=day,
        track_states_max_age_s=2 * day,
        ended_tracks_max_age_s=day,
        predictions_max_age_s=day,
        alerts_max_age_s=None,
        resolved_incidents_max_age_s=day,
        audit_log_max_age_s=day,
    )
    now = 10 * day
    with open_store(url, retention=settings) as s:
        s.write_observations([obs(now - 3 * day, 45.0, -110.0), obs(now - 0.5 * day, 45.0, -110.0)])
        s.write_track_states([track(1, now - 3 * day, 45.0, -110.0), track(1, now - 1.5 * day, 45.0, -110.0)])
        s.write_track_states([track(2, now - 3 * day, 45.0, -110.0)])
        s.end_tracks([2], now - 2 * day)
        s.write_prediction(1, now - 2 * day, {"p": 1})
        s.write_alert(Alert("old", now - 5 * day, "track_lost", "info", "old alert"))
        s.write_incident(Incident("r", 0.0, "resolved", "done", updated_s=now - 3 * day))
        s.write_incident(Incident("o", 0.0, "open", "still open", updated_s=now - 3 * day))
        s.audit("ops", "x", {}, time_s=now - 2 * day)
        deleted = s.apply_retention(now)
        assert deleted == {
            "observations": 1,
            "quarantine": 0,
            "track_states": 2,
            "tracks": 1,
            "predictions": 1,
            "incidents": 1,
            "audit_log": 1,
        }
        assert [o.time_s for o in s.observations(bbox=(44.0, -111.0, 46.0, -109.0))] == [now - 0.5 * day]
        assert [t.track_id for t in s.tracks()] == [1] and s.count("alerts") == 1
        assert [t.time_s for t in s.history_in_box(0.0, now, (44.0, -111.0, 46.0, -109.0))] == [
            now - 1.5 * day
        ]
        assert [i.incident_id for i in s.incidents()] == ["o"]
        assert s.apply_retention(now)["observations"] == 0
    with pytest.raises(ValueError, match="observations_max_age_s"):
        RetentionSettings(observations_max_age_s=-1.0)
    with pytest.raises(ValueError, match="unknown setting"):
        RetentionSettings.from_mapping({"observation_max_age": 5})


def test_concurrent_writers_and_readers_lose_nothing(store: Store) -> None:
    errors: list[BaseException] = []

    def writer(k: int) -> None:
        try:
            for b in range(10):
                store.write_observations(
                    [obs(k * 1000.0 + b * 10 + i, 45.0, -110.0, f"s{k}") for i in range(10)]
                )
        except BaseException as e:
            errors.append(e)

    def reader() -> None:
        try:
            for _ in range(20):
                n = store.count("observations")
                assert n % 10 == 0  # whole batches only: a batch is one transaction
        except BaseException as e:
            errors.append(e)

    threads = [threading.Thread(target=writer, args=(k,)) for k in range(4)] + [
        threading.Thread(target=reader) for _ in range(2)
    ]
    for t in threads:
        t.start()
    for t in threads:
        t.join()
    assert errors == []
    assert store.count("observations") == 400
    assert len(store.observations(sensor_id="s3", limit=None)) == 100


def test_errors_name_the_problem(store: Store) -> None:
    with pytest.raises(ValueError, match="unknown table"):
        store.count("users; DROP TABLE tracks")
    with pytest.raises(ValueError, match="limit"):
        store.tracks(limit=-1)
    store.close()
    store.close()  # idempotent
    with pytest.raises(StoreError, match="closed"):
        store.write_observations([obs(1.0, 45.0, -110.0)])
    with pytest.raises(StoreError, match="closed"):
        store.count()


def test_reopen_keeps_everything(url: str) -> None:
    with open_store(url) as s:
        s.write_observations([obs(1.0, 45.0, -110.0)])
        s.write_track_states([track(5, 200.0, 45.0, -110.0)])
        s.save_state("tracker", b"\x00\x01snapshot")
    with open_store(url) as again:
        assert again.count() == 1 and again.track(5) == track(5, 200.0, 45.0, -110.0)
        assert again.load_state("tracker") == b"\x00\x01snapshot"
