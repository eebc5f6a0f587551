"""The live pipeline over a real SQLite store: commit, track, classify, alerts, predictions,
operator actions, and resuming from the stored state after a crash."""

from __future__ import annotations

import os
import signal
import subprocess
import sys
import textwrap
import time
from collections import Counter
from pathlib import Path

import pytest

from stratowatch.config import Settings, load_settings
from stratowatch.model import ObjectClass, TrackStatus
from stratowatch.service.pipeline import Pipeline
from stratowatch.sim.scenario import Scenario, ScenarioConfig, generate_scenario
from stratowatch.store import open_store
from stratowatch.weather import analytic_field

REPO_ROOT = Path(__file__).resolve().parents[2]


@pytest.fixture(scope="module")
def scenario() -> Scenario:
    return generate_scenario(ScenarioConfig(seed=1, duration_s=1200.0, n_aircraft=4))


def _settings(tmp_path: Path, **kw: object) -> Settings:
    base: dict[str, object] = {
        "store_url": f"sqlite:///{tmp_path / 'sw.db'}",
        "predictions": {"enabled": False},
        "pipeline": {"state_every_steps": 5},
    }
    base.update(kw)
    return load_settings(None, env={}, **base)


def test_steps_commit_track_classify_alert_and_publish(tmp_path: Path, scenario: Scenario) -> None:
    settings = _settings(tmp_path)
    store = open_store(settings.store_url)
    pipe = Pipeline(settings, store, winds=None, sensors=scenario.sensors)
    sub = pipe.bus.subscribe(["*"], maxsize=100_000)
    tracks = []
    for t, obs in scenario.scans:
        tracks = pipe.process(t, obs)
    n_obs = scenario.n_observations
    assert store.count("observations") == n_obs == pipe.stats.observations_committed
    # every reported track is in the store as the tracker reported it, classification included
    stored = {t.track_id: t for t in store.tracks(limit=None)}
    for trk in tracks:
        assert stored[trk.track_id].lat_deg == pytest.approx(trk.lat_deg)
        assert stored[trk.track_id].classification == trk.classification
    balloons = [t for t in tracks if t.classification and t.classification.label == ObjectClass.BALLOON]
    assert len(balloons) >= 1 and all(t.alt_m > 15_000 for t in balloons)
    aircraft = [t for t in tracks if any(i.startswith("icao:") for i in t.identities)]
    assert aircraft and all(t.classification.label == ObjectClass.AIRCRAFT for t in aircraft)  # type: ignore[union-attr]
    # the bus saw one tracks event per step, with the same tracks as the return value
    events = sub.drain()
    topics = Counter(topic for topic, _ in events)
    assert topics["tracks"] == len(scenario.scans)
    last = [e for topic, e in events if topic == "tracks"][-1]
    assert [d["track_id"] for d in last["tracks"]] == [t.track_id for t in tracks]
    # a balloon without identity above 15 km opens an incident (new_unidentified)
    alerts = store.alerts(limit=None)
    assert any(a.rule == "new_unidentified" for a in alerts)
    assert topics["alerts"] >= 1 and topics["incidents"] >= 1
    assert store.load_state("pipeline.tracker") is not None
    pipe.close()
    store.close()


def test_acknowledge_and_resolve_are_stored_audited_and_published(tmp_path: Path, scenario: Scenario) -> None:
    settings = _settings(tmp_path)
    store = open_store(settings.store_url)
    pipe = Pipeline(settings, store, winds=None, sensors=scenario.sensors)
    for t, obs in scenario.scans:
        pipe.process(t, obs)
    alert = next(a for a in store.alerts(limit=None) if a.rule == "new_unidentified")
    sub = pipe.bus.subscribe(["alerts", "incidents"])
    acked = pipe.acknowledge(alert.alert_id, "duty officer")
    assert acked.acknowledged_by == "duty officer"
    stored = store.alert(alert.alert_id)
    assert stored is not None and stored.acknowledged_by == "duty officer"
    assert alert.incident_id is not None
    inc = store.incident(alert.incident_id)
    assert inc is not None and inc.status == "tracking"
    resolved = pipe.resolve(alert.incident_id, "duty officer", "weather balloon, NWS launch")
    assert resolved.status == "resolved"
    assert store.incident(alert.incident_id).status == "resolved"  # type: ignore[union-attr]
    assert [t for t, _ in sub.drain()] == ["alerts", "incidents", "incidents"]
    actions = [(e["actor"], e["action"]) for e in store.audit_log(limit=10)]
    assert ("duty officer", "acknowledge") in actions and ("duty officer", "resolve") in actions
    with pytest.raises(KeyError):
        pipe.acknowledge("no-such-alert", "x")
    with pytest.raises(ValueError):
        pipe.resolve(alert.incident_id, "x", "again")
    # the incident book survives a restart
    pipe.close()
    again = Pipeline(settings, store, winds=None, sensors=scenario.sensors)
    with pytest.raises(ValueError):
        again.resolve(alert.incident_id, "x", "again")
    again.close()
    store.close()


def test_restart_resumes_the_tracks_from_the_stored_state(tmp_path: Path, scenario: Scenario) -> None:
    settings = _settings(tmp_path)
    store = open_store(settings.store_url)
    first = Pipeline(settings, store, winds=None, sensors=scenario.sensors)
    half = len(scenario.scans) // 2
    for t, obs in scenario.scans[:half]:
        first.process(t, obs)
    snap_time = first.stats.last_time_s
    # steps after the last snapshot (every 5 steps): committed, but not in the snapshot
    for t, obs in scenario.scans[half : half + 3]:
        first.process(t, obs)
    t_now = scenario.scans[half + 2][0]
    before = {int(i) for i in first.tracker.table(t_now).track_id}
    # no close(): as if the process had been killed
    second = Pipeline(settings, open_store(settings.store_url), winds=None, sensors=scenario.sensors)
    assert second.stats.restored_from_s <= snap_time
    assert second.stats.observations_replayed == sum(
        len(obs) for t, obs in scenario.scans[: half + 3] if t > second.stats.restored_from_s
    )
    after = {int(i) for i in second.tracker.table(t_now).track_id}
    assert len(before & after) >= 0.8 * len(before), (before, after)
    # and the resumed pipeline carries on with the same track ids
    for t, obs in scenario.scans[half + 3 :]:
        tracks = second.process(t, obs)
    assert {t.track_id for t in tracks if t.status == TrackStatus.CONFIRMED} & before
    assert second.store.count("observations") == scenario.n_observations


def test_predictions_run_in_worker_processes_and_report_arrivals(tmp_path: Path, scenario: Scenario) -> None:
    grid = analytic_field(t0_s=scenario.config.start_time_s - 6 * 3600.0, hours=24.0)
    # a large zone around the episode so that some member of every balloon's ensemble enters it
    zone = {"id": "zone-ab", "kind": "circle", "center": [50.0, -113.0], "radius_m": 600_000.0, "name": "AB"}
    settings = _settings(
        tmp_path,
        predictions={"enabled": True, "members": 12, "hours": 3.0, "every_s": 3600.0, "workers": 1},
        geofences={"sample_sites": False, "zones": [zone]},
    )
    store = open_store(settings.store_url)
    pipe = Pipeline(settings, store, winds=grid, sensors=scenario.sensors)
    sub = pipe.bus.subscribe(["predictions"])
    for t, obs in scenario.scans:
        pipe.process(t, obs)
    pipe.wait_for_predictions(120.0)
    pipe.process(scenario.scans[-1][0] + 1.0, [])  # collects the finished jobs
    events = sub.drain()
    assert events, "no prediction was published"
    payload = events[0][1]["payload"]
    tid = int(payload["track_id"])
    assert "error" not in payload, payload
    assert store.prediction(tid)["track_id"] == tid  # type: ignore[index]
    kinds = Counter(f["properties"]["kind"] for f in payload["geojson"]["features"])
    assert kinds["cone"] >= 1 and kinds["median_path"] == 1
    assert len(payload["median_path"]) >= 2
    (arrival,) = payload["arrivals"]
    assert arrival["geofence_id"] == "zone-ab" and 0 < arrival["probability"] <= 1
    # balloons are predicted; aircraft with a transponder never are
    predicted = {int(e["track_id"]) for _, e in events}
    final = {t.track_id: t for t in store.tracks(limit=None)}
    assert any(final[tid].alt_m > 15_000 for tid in predicted if tid in final)
    assert not any(
        any(i.startswith("icao:") for i in final[tid].identities) for tid in predicted if tid in final
    )
    pipe.close()
    store.close()


def test_kill_9_loses_nothing_committed(tmp_path: Path) -> None:
    """A child process runs the pipeline and reports each committed count; SIGKILL it, reopen."""
    db = tmp_path / "crash.db"
    script = textwrap.dedent(
        f"""
        import sys
        from stratowatch.config import load_settings
        from stratowatch.service.pipeline import Pipeline
        from stratowatch.sim.scenario import ScenarioConfig, generate_scenario
        from stratowatch.store import open_store
        if __name__ == "__main__":
            sc = generate_scenario(ScenarioConfig(seed=2, duration_s=3600.0, n_aircraft=4))
            s = load_settings(None, env={{}}, store_url="sqlite:///{db}", predictions={{"enabled": False}})
            p = Pipeline(s, open_store(s.store_url), winds=None, sensors=sc.sensors)
            for t, obs in sc.scans:
                p.process(t, obs)
                print(p.stats.observations_committed, flush=True)
        """
    )
    child = subprocess.Popen(
        [sys.executable, "-c", script],
        stdout=subprocess.PIPE,
        text=True,
        env={**os.environ, "PYTHONPATH": ""},
    )
    assert child.stdout is not None
    acknowledged = 0
    deadline = time.monotonic() + 40
    while acknowledged < 3000 and time.monotonic() < deadline:
        line = child.stdout.readline()
        if not line:
            break
        acknowledged = int(line)
    os.kill(child.pid, signal.SIGKILL)
    child.wait()
    assert acknowledged >= 3000, "the child did not get far enough"
    store = open_store(f"sqlite:///{db}")
    assert store.count("observations") >= acknowledged
    settings = load_settings(None, env={}, store_url=f"sqlite:///{db}", predictions={"enabled": False})
    resumed = Pipeline(settings, store, winds=None)
    assert resumed.stats.steps == 0 and resumed.tracker.tracks.track_id.size > 0
    resumed.close()
    store.close()


def test_a_balloon_drifting_with_the_wind_is_classified_with_the_wind_reason(tmp_path: Path) -> None:
    """Position-only reports (no velocity, no identity) of an object drifting with the 50 hPa
    wind of the field: the pipeline's wind match (drift model velocity) says so."""
    import numpy as np

    from stratowatch.model import MeasurementKind, Observation
    from stratowatch.weather.interp import wind_at

    t0 = 1_675_274_400.0
    grid = analytic_field(t0_s=t0 - 6 * 3600.0, hours=24.0)
    settings = _settings(tmp_path, geofences={"sample_sites": False})
    store = open_store(settings.store_url)
    pipe = Pipeline(settings, store, winds=grid)
    lat, lon = 49.5, -112.0
    k = int(np.flatnonzero(grid.pressure_hpa == 50.0)[0])
    alt = float(grid.column_heights(t0, lat, lon)[0, k])
    rng = np.random.default_rng(5)
    for step in range(30):
        t = t0 + 60.0 * step
        e, n = rng.normal(0.0, 30.0, 2)
        ob = Observation(
            t,
            "radar-x",
            MeasurementKind.GEODETIC,
            (lat + n / 111_200.0, lon + e / (111_200.0 * np.cos(np.radians(lat))), alt),
            (30.0, 50.0),
        )
        tracks = pipe.process(t, [ob])
        u, v = wind_at(grid, t, lat, lon, alt)
        lat += float(v) * 60.0 / 111_200.0
        lon += float(u) * 60.0 / (111_200.0 * np.cos(np.radians(lat)))
    (trk,) = tracks
    assert trk.classification is not None and trk.classification.label == ObjectClass.BALLOON
    assert any(r.startswith("drifts with the 50 hPa wind within") for r in trk.classification.reasons), (
        trk.classification.reasons
    )
    stored = store.track(trk.track_id)
    assert stored is not None and stored.classification == trk.classification
    pipe.close()
    store.close()


def test_lighter_than_air_emitter_category_reaches_the_classifier(tmp_path: Path) -> None:
    """ADS-B says B2 (lighter than air) once, in an identification message; the track of that
    ICAO address is a balloon from then on, though a transponder alone says aircraft."""
    from stratowatch.model import MeasurementKind, Observation

    settings = _settings(tmp_path, geofences={"sample_sites": False})
    store = open_store(settings.store_url)
    pipe = Pipeline(settings, store, winds=None)
    t0 = 1_675_274_400.0
    for k in range(12):
        obs = [
            Observation(
                t0 + k,
                "adsb",
                MeasurementKind.GEODETIC,
                (48.0 + 1e-4 * k * 4, -110.0 if icao == "A0B2B2" else -109.0, 18_300.0),
                (10.0, 15.0),
                velocity_enu_mps=(0.0, 8.9, 0.0),
                velocity_sigma_mps=0.5,
                identity=f"icao:{icao}",
                category="B2" if (icao == "A0B2B2" and k == 2) else None,
            )
            for icao in ("A0B2B2", "A0A3A3")
        ]
        tracks = pipe.process(t0 + k, obs)
    by_id = {t.identities[0]: t for t in tracks}
    lta, plain = by_id["icao:A0B2B2"], by_id["icao:A0A3A3"]
    assert lta.classification is not None and plain.classification is not None
    assert lta.classification.label == ObjectClass.BALLOON
    assert "emitter category B2 (lighter than air): balloon" in lta.classification.reasons
    assert plain.classification.label != ObjectClass.BALLOON
    assert "transponder (ICAO address): aircraft-like" in plain.classification.reasons
    pipe.close()
    store.close()


def test_history_keeps_the_updated_states_and_the_live_row_follows_every_step(tmp_path: Path) -> None:
    """Each step moves every live track's row in the store, but only a measurement (or a change
    of status) adds a state to its history: a coasting track's predictions are not history."""
    from stratowatch.model import MeasurementKind, Observation

    settings = _settings(tmp_path)
    store = open_store(settings.store_url)
    pipe = Pipeline(settings, store, winds=None, geofences=[])
    t0 = 1.7e9

    def fix(k: int) -> Observation:  # a balloon drifting east at ~20 m/s, one fix a minute
        lon = -100.0 + k * 60.0 * 20.0 / (111_195.0 * 0.7071)
        return Observation(
            t0 + 60.0 * k, "gnss", MeasurementKind.GEODETIC, (45.0, lon, 20_000.0), (30.0, 30.0, 50.0)
        )

    for k in range(6):
        pipe.process(t0 + 60.0 * k, [fix(k)])
    (track,) = [t for t in store.tracks(limit=None) if t.status != TrackStatus.ENDED]
    updated = store.track_history(track.track_id)
    assert [s.n_updates for s in updated] == sorted({s.n_updates for s in updated})  # one state per update
    # two steps without a fix: the live row coasts forward, the history does not grow ...
    for k in (6, 7):
        pipe.process(t0 + 60.0 * k + 10.0, [])
    coasting = store.tracks(limit=None)[0]
    assert coasting.time_s == t0 + 60.0 * 7 + 10.0 and coasting.lon_deg > track.lon_deg
    history = store.track_history(track.track_id)
    assert len(history) == len(updated) + (coasting.status != track.status)  # only a status change
    # ... and the next fix adds its state
    pipe.process(t0 + 60.0 * 8, [fix(8)])
    assert store.track_history(track.track_id)[-1].n_updates == track.n_updates + 1
    pipe.close()
    store.close()
