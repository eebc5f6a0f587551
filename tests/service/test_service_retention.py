"""The pipeline applies the store's retention on a data-time schedule from the settings."""

from __future__ import annotations

from pathlib import Path

import pytest

from stratowatch.config import load_settings
from stratowatch.service.pipeline import Pipeline
from stratowatch.sim.scenario import ScenarioConfig, generate_scenario
from stratowatch.store import open_store


def test_old_observations_are_expired_on_schedule(tmp_path: Path) -> None:
    scenario = generate_scenario(ScenarioConfig(seed=2, duration_s=900.0, n_aircraft=3))
    settings = load_settings(
        None,
        env={},
        store_url=f"sqlite:///{tmp_path / 'sw.db'}",
        predictions={"enabled": False},
        retention={"every_s": 120.0, "observations_max_age_s": 300.0},
    )
    store = open_store(settings.store_url, retention=settings.retention.store_settings())
    pipe = Pipeline(settings, store, winds=None, sensors=scenario.sensors)
    last = 0.0
    for t, obs in scenario.scans:
        pipe.process(t, obs)
        last = t
    assert pipe.stats.retention_runs >= (last - scenario.scans[0][0]) // 120 - 1
    kept = store.observations(limit=None)
    assert kept and min(o.time_s for o in kept) >= last - 300.0 - 120.0  # at most one period late
    assert pipe.stats.rows_expired == pipe.stats.observations_committed - len(kept)
    store.close()


def test_retention_settings_are_checked_at_start_up() -> None:
    with pytest.raises(Exception, match="observations_max_age_s"):
        load_settings(None, env={}, retention={"observations_max_age_s": -5})
