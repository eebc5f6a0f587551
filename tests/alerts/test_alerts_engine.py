"""The alert engine's rules, de-duplication and state, over synthetic tracks."""

from __future__ import annotations

import json

import numpy as np
import pytest

from stratowatch.alerts.engine import AlertEngine, RulesConfig
from stratowatch.alerts.geofences import inside, load_border_sides, load_geofences, sample_sites_path
from stratowatch.model import Geofence, ObjectClass, TrackStatus

SITE = Geofence("site", "Test site", "circle", ((47.5, -111.2),), radius_m=15_000.0, severity="critical")
LOW = Geofence(
    "low", "Low box", "polygon", ((46.0, -106.0), (46.0, -104.0), (45.0, -104.0)), max_alt_m=5000.0
)


def _aircraft(make_track, tid, lat, lon, t, alt=10_000.0, **kw):  # type: ignore[no-untyped-def]
    return make_track(
        tid, lat, lon, alt, t, label=ObjectClass.AIRCRAFT, identities=(f"icao:{tid:06X}",), **kw
    )


def test_enter_once_then_exit(make_track) -> None:  # type: ignore[no-untyped-def]
    engine = AlertEngine([SITE])
    a0 = engine.evaluate(0.0, [_aircraft(make_track, 1, 47.9, -111.2, 0.0)])
    assert a0 == []
    a1 = engine.evaluate(10.0, [_aircraft(make_track, 1, 47.5, -111.2, 10.0)])
    assert [(a.rule, a.alert_id, a.severity) for a in a1] == [
        ("geofence_enter", "geofence_enter:1:site", "critical")
    ]
    assert a1[0].incident_id == "INC-0001"
    assert "T1 entered Test site" in a1[0].message
    assert engine.last_incidents[0].track_ids == (1,)
    # still inside: nothing new
    assert engine.evaluate(20.0, [_aircraft(make_track, 1, 47.51, -111.2, 20.0)]) == []
    a3 = engine.evaluate(30.0, [_aircraft(make_track, 1, 47.9, -111.2, 30.0)])
    assert [(a.rule, a.severity, a.incident_id) for a in a3] == [("geofence_exit", "info", "INC-0001")]


def test_reentry_is_quiet_when_jittering_and_notified_later(make_track) -> None:  # type: ignore[no-untyped-def]
    engine = AlertEngine([SITE], RulesConfig(renotify_after_s=600.0))
    inside_pt, outside_pt = (47.5, -111.2), (47.9, -111.2)
    rules = []
    for k, (lat, lon) in enumerate([inside_pt, outside_pt, inside_pt, outside_pt, inside_pt]):
        rules += [a.rule for a in engine.evaluate(10.0 * k, [_aircraft(make_track, 1, lat, lon, 10.0 * k)])]
    assert rules == ["geofence_enter", "geofence_exit"], "a track on the edge does not cause an alert storm"
    late = engine.evaluate(1000.0, [_aircraft(make_track, 1, *outside_pt, 1000.0)])
    late += engine.evaluate(1010.0, [_aircraft(make_track, 1, *inside_pt, 1010.0)])
    assert [a.rule for a in late] == ["geofence_exit", "geofence_enter"], "news again after 600 s"


def test_altitude_band(make_track) -> None:  # type: ignore[no-untyped-def]
    engine = AlertEngine([LOW])
    alerts = engine.evaluate(
        0.0,
        [
            _aircraft(make_track, 1, 45.8, -104.5, 0.0, 4000.0),
            _aircraft(make_track, 2, 45.8, -104.5, 0.0, 9000.0),
        ],
    )
    assert [(a.rule, a.track_id) for a in alerts] == [("geofence_enter", 1)]


def test_tentative_and_ended_tracks_are_ignored(make_track) -> None:  # type: ignore[no-untyped-def]
    engine = AlertEngine([SITE])
    tracks = [
        _aircraft(make_track, 1, 47.5, -111.2, 0.0, status=TrackStatus.TENTATIVE),
        _aircraft(make_track, 2, 47.5, -111.2, 0.0, status=TrackStatus.ENDED),
    ]
    assert engine.evaluate(0.0, tracks) == []


def _arrival(p: float, median_h: float, earliest_h: float | None = None) -> dict[str, object]:
    e = median_h if earliest_h is None else earliest_h
    return {
        "arrivals": [
            {"geofence_id": "site", "probability": p, "earliest_s": e * 3600.0, "median_s": median_h * 3600.0}
        ]
    }


def test_predicted_entry_and_material_change(make_track) -> None:  # type: ignore[no-untyped-def]
    engine = AlertEngine([SITE], RulesConfig(predicted_entry_hours=24.0, predicted_entry_probability=0.3))
    tr = make_track(5, 45.0, -115.0, 18_000.0, 0.0, identities=("aprs:N0CALL-11",))

    def step(pred: dict[str, object]) -> list[str]:
        return [f"{a.rule}:{a.details['probability']}" for a in engine.evaluate(0.0, [tr], {5: pred})]

    assert step(_arrival(0.2, 5.0)) == [], "below the probability threshold"
    assert step(_arrival(0.9, 30.0)) == [], "beyond the horizon"
    got = engine.evaluate(0.0, [tr], {5: _arrival(0.5, 5.0)})
    assert [a.rule for a in got] == ["predicted_entry"]
    assert got[0].details["expected_entry_s"] == 5.0 * 3600.0
    assert got[0].details["hours_to_entry"] == 5.0
    assert "probability 0.50" in got[0].message and "1970-01-01 05:00 UTC" in got[0].message
    assert step(_arrival(0.6, 5.5)) == [], "small change: no re-notification"
    assert step(_arrival(0.7, 5.5)) == ["predicted_entry:0.7"], "probability moved by more than 0.15"
    assert step(_arrival(0.7, 7.0)) == ["predicted_entry:0.7"], "entry time moved by more than 1 h"
    assert step(_arrival(0.72, 7.5)) == []
    inc = engine.book.incident("INC-0001")
    assert len(inc.alert_ids) == 1 and len(inc.history) == 4  # opened + three notifications


def test_predicted_entry_into_unknown_geofence_uses_its_id(make_track) -> None:  # type: ignore[no-untyped-def]
    engine = AlertEngine([])
    tr = make_track(5, 45.0, -115.0, 18_000.0, 0.0, identities=("aprs:N0CALL-11",))
    pred = {
        "arrivals": [{"geofence_id": "elsewhere", "probability": 0.4, "earliest_s": 100.0, "median_s": 200.0}]
    }
    (alert,) = engine.evaluate(0.0, [tr], {5: pred})
    assert alert.geofence_id == "elsewhere" and "enter elsewhere" in alert.message


def test_new_unidentified_objects_open_incidents(make_track) -> None:  # type: ignore[no-untyped-def]
    engine = AlertEngine([], RulesConfig(new_object_min_age_s=0.0))
    quiet = [
        _aircraft(make_track, 1, 60.0, -150.0, 0.0, 18_000.0),  # identified (ICAO)
        make_track(2, 60.0, -150.0, 12_000.0, 0.0),  # too low
        make_track(3, 60.0, -150.0, 20_000.0, 0.0, label=ObjectClass.AIRCRAFT),  # aircraft-like
        make_track(4, 60.0, -150.0, 20_000.0, 0.0, identities=("sonde:S1234567",)),  # a radiosonde
        make_track(6, 60.0, -150.0, 20_000.0, 0.0, status=TrackStatus.COASTING),  # not confirmed now
    ]
    assert engine.evaluate(0.0, quiet) == []
    first = make_track(42, 61.0, -150.0, 18_600.0, 10.0)
    a1 = engine.evaluate(10.0, [*quiet, first])
    assert [a.alert_id for a in a1] == ["new_unidentified:42"]
    inc1 = engine.book.incident(a1[0].incident_id or "")
    assert inc1.incident_id == "INC-0001"
    assert inc1.title == "Unidentified high-altitude object T42 (18.6 km, balloon 0.93)"
    assert engine.evaluate(20.0, [*quiet, first]) == [], "announced once"
    second = make_track(43, 49.0, -125.0, 17_900.0, 30.0, label=ObjectClass.UNKNOWN, probability=0.6)
    a2 = engine.evaluate(30.0, [*quiet, first, second])
    assert [a.alert_id for a in a2] == ["new_unidentified:43"]
    inc2 = engine.book.incident(a2[0].incident_id or "")
    assert inc2.incident_id == "INC-0002"
    assert inc2.title.startswith("Unidentified high-altitude object T43 (17.9 km, unknown 0.60)")
    assert "potential second incident" in inc2.title and "INC-0001" in inc2.title
    # once the first is resolved, a third object is not a "second incident" of it
    engine.resolve("INC-0001", "duty officer", 40.0, "weather balloon, confirmed by NWS")
    engine.resolve("INC-0002", "duty officer", 40.0)
    a3 = engine.evaluate(50.0, [*quiet, first, second, make_track(44, 50.0, -120.0, 19_000.0, 50.0)])
    assert [a.alert_id for a in a3] == ["new_unidentified:44"]
    assert "potential second" not in engine.book.incident("INC-0003").title


def test_track_of_interest_lost(make_track) -> None:  # type: ignore[no-untyped-def]
    engine = AlertEngine([SITE], RulesConfig(lost_after_s=600.0))
    engine.evaluate(
        0.0, [make_track(42, 47.5, -111.2, 18_000.0, 0.0), _aircraft(make_track, 7, 40.0, -100.0, 0.0)]
    )
    coasting = [
        make_track(42, 47.52, -111.2, 18_000.0, 500.0, status=TrackStatus.COASTING, last_update_s=0.0),
        _aircraft(make_track, 7, 40.0, -100.0, 900.0, status=TrackStatus.COASTING, last_update_s=0.0),
    ]
    assert engine.evaluate(500.0, coasting) == [], "coasting, but not yet for lost_after_s"
    coasting = [
        make_track(42, 47.52, -111.2, 18_000.0, 900.0, status=TrackStatus.COASTING, last_update_s=0.0),
        _aircraft(make_track, 7, 40.0, -100.0, 900.0, status=TrackStatus.COASTING, last_update_s=0.0),
    ]
    lost = engine.evaluate(900.0, coasting)
    assert [(a.rule, a.track_id) for a in lost] == [("track_lost", 42)], "only the track of interest"
    assert lost[0].details["seconds_since_update"] == 900.0
    assert engine.evaluate(950.0, coasting) == []
    # dropped by the tracker altogether: the second track of interest
    engine2 = AlertEngine([SITE])
    engine2.evaluate(0.0, [make_track(42, 47.5, -111.2, 18_000.0, 0.0)])
    dropped = engine2.evaluate(10.0, [])
    assert [(a.rule, a.track_id, a.details["dropped"]) for a in dropped] == [("track_lost", 42, True)]


def test_border_crossing_with_the_sample_border(make_track) -> None:  # type: ignore[no-untyped-def]
    fences = load_geofences(sample_sites_path())
    sides = load_border_sides(sample_sites_path())
    engine = AlertEngine(fences, RulesConfig(border_sides=sides))

    def primary(tid: int, lat: float, t: float):  # type: ignore[no-untyped-def]
        return make_track(tid, lat, -110.0, 9000.0, t, label=ObjectClass.AIRCRAFT)  # radar only, no identity

    engine.evaluate(0.0, [primary(9, 49.2, 0.0), _aircraft(make_track, 10, 49.2, -111.0, 0.0)])
    (alert,) = engine.evaluate(60.0, [primary(9, 48.8, 60.0), _aircraft(make_track, 10, 48.8, -111.0, 60.0)])
    assert alert.rule == "border_crossing" and alert.track_id == 9, "the identified airliner is routine"
    assert alert.details["direction"] == "CAN->USA"
    assert alert.details["from"] == "CAN" and alert.details["to"] == "USA"
    (back,) = engine.evaluate(120.0, [primary(9, 49.2, 120.0)])
    assert back.details["direction"] == "USA->CAN"
    # identified objects count when asked for, or when an incident follows them
    everyone = AlertEngine(fences, RulesConfig(border_sides=sides, border_crossing_identified=True))
    everyone.evaluate(0.0, [_aircraft(make_track, 10, 49.2, -111.0, 0.0)])
    assert [a.track_id for a in everyone.evaluate(60.0, [_aircraft(make_track, 10, 48.8, -111.0, 60.0)])] == [
        10
    ]
    followed = AlertEngine(fences, RulesConfig(border_sides=sides))
    followed.book.open(0.0, "suspicious squawk", track_ids=(10,))
    followed.evaluate(0.0, [_aircraft(make_track, 10, 49.2, -111.0, 0.0)])
    (f,) = followed.evaluate(60.0, [_aircraft(make_track, 10, 48.8, -111.0, 60.0)])
    assert f.incident_id == "INC-0001"
    # only the configured border ids count as borders
    engine2 = AlertEngine(fences, RulesConfig(border_geofence_ids=("nothing",)))
    engine2.evaluate(0.0, [primary(9, 49.2, 0.0)])
    assert engine2.evaluate(60.0, [primary(9, 48.8, 60.0)]) == []


def test_many_tracks_enter_counts_match_reference(make_track) -> None:  # type: ignore[no-untyped-def]
    rng = np.random.default_rng(3)
    fences = [
        Geofence(f"c{k}", f"C{k}", "circle", ((float(lat), float(lon)),), radius_m=80_000.0)
        for k, (lat, lon) in enumerate(zip(rng.uniform(40, 55, 30), rng.uniform(-120, -90, 30), strict=True))
    ]
    n = 3000
    lat0, lon0 = rng.uniform(40, 55, n), rng.uniform(-120, -90, n)
    lat1, lon1 = lat0 + rng.normal(0, 0.3, n), lon0 + rng.normal(0, 0.3, n)
    engine = AlertEngine(fences)
    ident = [(f"icao:{i:06X}",) for i in range(n)]
    t0 = [make_track(i, lat0[i], lon0[i], 10_000.0, 0.0, identities=ident[i]) for i in range(n)]
    t1 = [make_track(i, lat1[i], lon1[i], 10_000.0, 10.0, identities=ident[i]) for i in range(n)]
    first = engine.evaluate(0.0, t0)
    second = engine.evaluate(10.0, t1)
    in0 = inside(fences, lat0, lon0, 10_000.0)
    in1 = inside(fences, lat1, lon1, 10_000.0)
    assert sum(a.rule == "geofence_enter" for a in first) == int(in0.sum())
    assert sum(a.rule == "geofence_enter" for a in second) == int((in1 & ~in0).sum())
    assert sum(a.rule == "geofence_exit" for a in second) == int((in0 & ~in1).sum())
    assert int(in0.sum()) > 20


def test_snapshot_restore_resumes_without_repeats(make_track) -> None:  # type: ignore[no-untyped-def]
    engine = AlertEngine([SITE])
    tracks = [make_track(42, 47.5, -111.2, 18_000.0, 300.0)]
    assert {a.rule for a in engine.evaluate(300.0, tracks)} == {"new_unidentified", "geofence_enter"}
    snap = json.loads(json.dumps(engine.snapshot(), allow_nan=False))
    resumed = AlertEngine([SITE])
    resumed.restore(snap)
    assert resumed.evaluate(310.0, tracks) == []
    out = resumed.evaluate(320.0, [make_track(42, 48.5, -111.2, 18_000.0, 320.0)])
    assert [a.rule for a in out] == ["geofence_exit"], "inside state survived the restart"
    assert resumed.book.incident("INC-0001").alert_ids == (
        "new_unidentified:42",
        "geofence_enter:42:site",
        "geofence_exit:42:site",
    )


def test_set_geofences_keeps_state_of_kept_fences(make_track) -> None:  # type: ignore[no-untyped-def]
    other = Geofence("other", "Other", "circle", ((30.0, -100.0),), radius_m=1000.0)
    engine = AlertEngine([SITE])
    engine.evaluate(0.0, [_aircraft(make_track, 1, 47.5, -111.2, 0.0)])
    engine.set_geofences([other, SITE])
    assert engine.evaluate(10.0, [_aircraft(make_track, 1, 47.5, -111.2, 10.0)]) == []
    assert [g.geofence_id for g in engine.geofences] == ["other", "site"]


def test_operator_actions_use_the_clock(make_track) -> None:  # type: ignore[no-untyped-def]
    engine = AlertEngine([SITE], clock=lambda: 1234.0)
    (alert,) = engine.evaluate(0.0, [_aircraft(make_track, 1, 47.5, -111.2, 0.0)])
    inc = engine.acknowledge(alert.alert_id, "alice")
    assert (
        inc.status == "tracking" and (1234.0, "alice", f"acknowledged alert {alert.alert_id}") in inc.history
    )
    assert engine.book.alert(alert.alert_id).acknowledged_by == "alice"
    done = engine.resolve(inc.incident_id, "bob", note="airliner")
    assert done.status == "resolved" and done.history[-1] == (
        1234.0,
        "bob",
        "status tracking -> resolved: airliner",
    )


@pytest.mark.parametrize("bad_lat", [float("nan")])
def test_nan_positions_raise_nothing(make_track, bad_lat: float) -> None:  # type: ignore[no-untyped-def]
    engine = AlertEngine(load_geofences(sample_sites_path()))
    assert engine.evaluate(0.0, [_aircraft(make_track, 1, bad_lat, -111.2, 0.0)]) == []
    assert engine.evaluate(10.0, [_aircraft(make_track, 1, bad_lat, -111.2, 10.0)]) == []


def test_new_object_must_be_tracked_a_while(make_track) -> None:  # type: ignore[no-untyped-def]
    engine = AlertEngine([], RulesConfig(new_object_min_age_s=120.0))
    assert engine.evaluate(60.0, [make_track(42, 61.0, -150.0, 18_600.0, 60.0)]) == [], "a minute-old track"
    (alert,) = engine.evaluate(130.0, [make_track(42, 61.0, -150.0, 18_600.0, 130.0)])
    assert alert.rule == "new_unidentified"


def test_simulated_episode_through_the_tracker() -> None:
    """The demo episode: the silent balloon opens one incident; the APRS balloon and the airliners
    (mostly ADS-B) open none for being new."""
    from stratowatch.geo import haversine_m
    from stratowatch.model import ObservationBatch
    from stratowatch.sim import ScenarioConfig, generate_scenario
    from stratowatch.tracking import Tracker

    scenario = generate_scenario(
        ScenarioConfig(duration_s=1500.0, n_aircraft=6, radar_report_every=3, second_balloon_delay_s=300.0)
    )
    tracker = Tracker(scenario.sensors)
    fences = load_geofences(sample_sites_path())
    engine = AlertEngine(fences, RulesConfig(border_sides=load_border_sides(sample_sites_path())))
    alerts = []
    next_s = -np.inf
    for t, observations in scenario.scans:
        table = tracker.step_batch(t, ObservationBatch.from_observations(observations, tracker.identities))
        if t >= next_s:
            alerts += engine.evaluate(t, tracker.to_tracks(table))
            next_s = t + 60.0
    new = [a for a in alerts if a.rule == "new_unidentified"]
    assert len(new) == 1
    balloon = next(x for x in scenario.targets if x.name == "balloon-1")
    k = int(np.argmin(np.abs(balloon.time_s - new[0].time_s)))
    miss_m = haversine_m(
        balloon.lat_deg[k], balloon.lon_deg[k], new[0].details["lat_deg"], new[0].details["lon_deg"]
    )
    assert miss_m < 5000.0, "the alert is about balloon-1"
    assert "balloon" in new[0].message
    opened = [i for i in engine.book.incidents() if i.title.startswith("Unidentified high-altitude object")]
    assert [i.incident_id for i in opened] == [new[0].incident_id]


def test_prune_forgets_old_resolved_incidents_of_gone_tracks(make_track) -> None:  # type: ignore[no-untyped-def]
    engine = AlertEngine([SITE], RulesConfig(new_object_min_age_s=0.0))
    engine.evaluate(
        0.0, [make_track(1, 47.5, -111.2, 18_000.0, 0.0), make_track(2, 60.0, -150.0, 18_000.0, 0.0)]
    )
    assert len(engine.book.incidents()) == 2
    engine.resolve("INC-0001", "op", 10.0)
    engine.resolve("INC-0002", "op", 10.0)
    engine.evaluate(20.0, [make_track(2, 60.0, -150.0, 18_000.0, 20.0)])  # track 1 is gone
    assert engine.prune(5.0) == 0, "nothing is old enough"
    assert engine.prune(100.0) == 3  # INC-0001 and the records of its two alerts
    assert not engine.book.was_notified("geofence_enter:1:site")
    assert engine.book.was_notified("new_unidentified:2")
    assert [i.incident_id for i in engine.book.incidents()] == ["INC-0002"], "track 2 is still held"
    assert engine.evaluate(30.0, [make_track(2, 60.0, -150.0, 18_000.0, 30.0)]) == [], "not announced again"
    assert engine.book.open(40.0, "next").incident_id == "INC-0003", "ids are never reused"
