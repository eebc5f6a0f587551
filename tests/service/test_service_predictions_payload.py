"""The stored prediction carries what the console draws: cones, paths and member spaghetti."""

from __future__ import annotations

import numpy as np

from stratowatch.service.predictions import SPAGHETTI_MEMBERS, PredictionJob, init_worker, run_job
from stratowatch.weather import analytic_field


def test_payload_has_member_lines_that_start_at_the_track() -> None:
    init_worker(analytic_field())
    job = PredictionJob(
        track_id=7,
        time_s=1_675_296_000.0,
        lat_deg=48.0,
        lon_deg=-110.0,
        alt_m=18_500.0,
        velocity_east_mps=15.0,
        velocity_north_mps=-3.0,
        position_sigma_m=(500.0, 500.0, 200.0),
        hours=6.0,
        members=100,
        seed=3,
    )
    payload = run_job(job)
    assert "error" not in payload
    kinds = [f["properties"]["kind"] for f in payload["geojson"]["features"]]
    members = [f for f in payload["geojson"]["features"] if f["properties"]["kind"] == "member"]
    assert "cone" in kinds and "median_path" in kinds
    assert len(members) == SPAGHETTI_MEMBERS
    starts = np.array([m["geometry"]["coordinates"][0] for m in members])
    assert np.all(np.abs(starts[:, 0] + 110.0) < 0.1) and np.all(np.abs(starts[:, 1] - 48.0) < 0.1)
    ends = np.array([m["geometry"]["coordinates"][-1] for m in members])
    assert np.ptp(ends[:, 0]) > 0.01  # the members spread: it is an ensemble, not one path repeated
