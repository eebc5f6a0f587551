"""Releasability views: a partner's picture is rebuilt from only what is released to it.

The node (run by CAN) shares with USA. One CAN radar is national only. The pipeline keeps CAN's
full picture and USA's picture; USA's must be exactly what a tracker fed with only the released
observations makes, so nothing national reaches USA through fusion, history, alerts or counts.
"""

from __future__ import annotations

import dataclasses
from pathlib import Path

import numpy as np
import pytest

from stratowatch.config import Settings, load_settings
from stratowatch.model import ObservationBatch, Sensor
from stratowatch.service.pipeline import ID_BLOCK, Pipeline
from stratowatch.sim.scenario import Scenario, ScenarioConfig, generate_scenario
from stratowatch.store import open_store
from stratowatch.store.scoped import ScopedStore
from stratowatch.tracking import Tracker

CAN_ONLY = frozenset({"CAN"})


@pytest.fixture(scope="module")
def scenario() -> Scenario:
    return generate_scenario(ScenarioConfig(seed=3, duration_s=900.0, n_aircraft=6))


def _national_radar(scenario: Scenario) -> str:
    radars = sorted(
        s.sensor_id for s in scenario.sensors.values() if s.owner == "CAN" and s.kind.startswith("radar")
    )
    counts = {r: sum(o.sensor_id == r for _, obs in scenario.scans for o in obs) for r in radars}
    return max(counts, key=lambda r: counts[r])  # the busiest Canadian radar


def _sensors(scenario: Scenario) -> dict[str, Sensor]:
    national = _national_radar(scenario)
    out = dict(scenario.sensors)
    out[national] = dataclasses.replace(out[national], releasable_to=CAN_ONLY)
    return out


def _settings(tmp_path: Path) -> Settings:
    return load_settings(
        None,
        env={},
        store_url=f"sqlite:///{tmp_path / 'sw.db'}",
        predictions={"enabled": False},
        pipeline={"state_every_steps": 5},
        node={"partner": "CAN"},
        partners=[{"id": "USA"}],
    )


def test_a_partners_picture_is_the_tracker_of_only_what_is_released_to_it(
    tmp_path: Path, scenario: Scenario
) -> None:
    sensors = _sensors(scenario)
    national = _national_radar(scenario)
    settings = _settings(tmp_path)
    store = open_store(settings.store_url)
    pipe = Pipeline(settings, store, winds=None, sensors=sensors)
    sub = pipe.bus.subscribe(["tracks"], maxsize=100_000)
    reference = Tracker(sensors)  # what USA could build from what CAN releases to it
    for t, obs in scenario.scans:
        pipe.process(t, obs)
        released = [o for o in obs if o.sensor_id != national]
        reference.step_batch(t, ObservationBatch.from_observations(released, reference.identities))
    own, usa = pipe.view(""), pipe.view("USA")
    usa_tracks = usa.tracker.tracks
    ref_tracks = reference.tracks
    assert len(usa_tracks) == len(ref_tracks) > 0
    np.testing.assert_array_equal(usa_tracks.track_id - ID_BLOCK, ref_tracks.track_id)
    np.testing.assert_allclose(usa_tracks.x, ref_tracks.x, rtol=0, atol=1e-6)
    # the national radar fed CAN's picture, never USA's
    scoped = ScopedStore(store, "USA")
    usa_stored = scoped.tracks(limit=None)
    assert usa_stored and all(t.audience == "USA" and t.track_id > ID_BLOCK for t in usa_stored)
    assert all(national not in t.sensors for t in usa_stored)
    assert all(national not in s.sensors for t in usa_stored for s in scoped.track_history(t.track_id))
    own_stored = ScopedStore(store, "").tracks(limit=None)
    assert any(national in t.sensors for t in own_stored)
    assert all(t.track_id < ID_BLOCK for t in own_stored)
    # a fused track is labelled with the meet of its contributors: with the national radar, CAN only
    assert all(t.releasable_to == CAN_ONLY for t in own_stored if national in t.sensors)
    assert len(own.live_ids) >= len(usa.live_ids)
    # raw plots: USA reads only the released ones; counts agree
    n_national = sum(o.sensor_id == national for _, obs in scenario.scans for o in obs)
    assert n_national > 0
    assert scoped.count_observations() == scenario.n_observations - n_national
    assert all(o.sensor_id != national for o in scoped.observations(limit=None))
    # the bus carries each picture's tracks marked with its audience
    audiences = {e["audience"] for _, e in sub.drain()}
    assert audiences == {"", "USA"}
    # alerts and incidents of USA's picture are about USA's tracks, numbered on their own
    usa_alerts = scoped.alerts(limit=None)
    assert usa_alerts and all(a.audience == "USA" and (a.track_id or 0) > ID_BLOCK for a in usa_alerts)
    assert all(i.incident_id.startswith("USA-INC-") for i in scoped.incidents(limit=None))
    assert all(not i.incident_id.startswith("USA") for i in ScopedStore(store, "").incidents(limit=None))
    pipe.close()
    store.close()


def test_both_pictures_resume_after_a_restart(tmp_path: Path, scenario: Scenario) -> None:
    sensors = _sensors(scenario)
    settings = _settings(tmp_path)
    half = len(scenario.scans) // 2
    with open_store(settings.store_url) as store:
        pipe = Pipeline(settings, store, winds=None, sensors=sensors)
        for t, obs in scenario.scans[:half]:
            pipe.process(t, obs)
        before = {v.audience: set(v.live_ids.tolist()) for v in pipe.views}
        pipe.close()
    with open_store(settings.store_url) as store:
        pipe = Pipeline(settings, store, winds=None, sensors=sensors)
        assert {v.audience: set(v.live_ids.tolist()) for v in pipe.views} == before
        tracks = []
        for t, obs in scenario.scans[half:]:
            tracks = pipe.process(t, obs)
        assert tracks and all(t.track_id < ID_BLOCK for t in tracks)
        usa_ids = pipe.view("USA").live_ids
        assert usa_ids.size and (usa_ids > ID_BLOCK).all()
        assert before["USA"] & set(usa_ids.tolist()), "USA's tracks kept their ids across the restart"
        pipe.close()


def test_acknowledging_works_only_in_the_callers_picture(tmp_path: Path, scenario: Scenario) -> None:
    settings = _settings(tmp_path)
    with open_store(settings.store_url) as store:
        pipe = Pipeline(settings, store, winds=None, sensors=_sensors(scenario))
        for t, obs in scenario.scans:
            pipe.process(t, obs)
        usa_alert = ScopedStore(store, "USA").alerts(limit=1)[0]
        with pytest.raises(KeyError):
            pipe.acknowledge(usa_alert.alert_id, "can-analyst")  # not in CAN's own picture
        acked = pipe.acknowledge(usa_alert.alert_id, "usa-analyst", audience="USA")
        assert acked.audience == "USA" and acked.acknowledged_by == "usa-analyst"
        stored = store.alert(usa_alert.alert_id)
        assert stored is not None and stored.audience == "USA" and stored.acknowledged_by == "usa-analyst"
        pipe.close()
