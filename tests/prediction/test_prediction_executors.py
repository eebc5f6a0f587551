"""Ensembles through executors: a spawn process pool and a real Dask LocalCluster, bit for bit."""

from __future__ import annotations

from collections.abc import Iterator

import numpy as np
import pytest

from stratowatch.prediction import TrackState, WindErrorModel, predict_track
from stratowatch.prediction.executors import (
    DaskExecutor,
    EnsembleJob,
    LocalExecutor,
    chunks,
    join,
    predict_tracks,
)
from stratowatch.prediction.integrate import Prediction, member_seeds
from stratowatch.weather.analytic import analytic_field
from stratowatch.weather.grid import WindGrid

FIELDS = ("time_s", "lat_deg", "lon_deg", "alt_m", "status", "end_time_s", "burst_time_s", "member_flags")


@pytest.fixture(scope="module")
def grid() -> WindGrid:
    return analytic_field(hours=24.0, resolution_deg=5.0)


def _jobs(grid: WindGrid, members: int = 90) -> list[EnsembleJob]:
    t0 = float(grid.time_s[0]) + 3600.0
    cov = np.diag([4e6, 4e6, 250_000.0, 1.0, 1.0, 0.01])
    err = WindErrorModel(sigma_mps=3.0, growth_mps_per_day=2.0)
    return [
        EnsembleJob("known-alt", TrackState(t0, 55.0, -150.0, 18000.0, 12.0, 3.0), cov, 8.0, members, seed=1),
        EnsembleJob(
            "drift-alt",
            TrackState(t0, 48.0, -120.0, velocity_east_mps=20.0, velocity_north_mps=-2.0, alt_known=False),
            cov,
            8.0,
            members + 13,
            seed=2,
            wind_error=err,
        ),
        EnsembleJob("no-cov", TrackState(t0, 40.0, -100.0, 15000.0), None, 6.0, members // 2, seed=3),
    ]


def assert_same(a: Prediction, b: Prediction) -> None:
    for name in FIELDS:
        x, y = getattr(a, name), getattr(b, name)
        assert x.shape == y.shape, name
        assert x.tobytes() == y.tobytes(), f"{name} differs"
    assert a.notes == b.notes
    assert a.source == b.source


def test_member_seeds_depend_only_on_the_index() -> None:
    full = member_seeds(7, 1000)
    assert np.array_equal(member_seeds(7, 10), full[:10])
    assert len(np.unique(full)) == 1000
    assert not np.array_equal(member_seeds(8, 10), full[:10])


def test_any_cut_of_the_members_gives_the_whole_run(grid: WindGrid) -> None:
    for job in _jobs(grid):
        whole = predict_track(
            job.state, job.covariance, grid, job.hours, job.members, job.seed, wind_error=job.wind_error
        )
        # the members really differ (the identity below is not a trivial one)
        assert float(np.nanstd(whole.lat_deg[:, -1])) > 0.01
        for size in (1, 7, 40, job.members):
            parts = [
                predict_track(
                    job.state,
                    job.covariance,
                    grid,
                    job.hours,
                    job.members,
                    job.seed,
                    wind_error=job.wind_error,
                    member_range=r,
                )
                for r in chunks(job.members, size)
            ]
            assert_same(join(parts, grid), whole)


def test_member_range_is_checked(grid: WindGrid) -> None:
    job = _jobs(grid)[0]
    for bad in ((0, 0), (-1, 5), (10, job.members + 1)):
        with pytest.raises(ValueError, match="member_range"):
            predict_track(job.state, job.covariance, grid, 1.0, job.members, member_range=bad)


@pytest.fixture(scope="module")
def inline_results(grid: WindGrid) -> list[Prediction]:
    return predict_tracks(_jobs(grid), grid)


def test_local_process_pool_matches_inline(grid: WindGrid, inline_results: list[Prediction]) -> None:
    with LocalExecutor(max_workers=2) as ex:
        got = predict_tracks(_jobs(grid), grid, ex, members_per_task=25)
    assert len(got) == 3
    for a, b in zip(got, inline_results, strict=True):
        assert_same(a, b)


@pytest.fixture(scope="module")
def dask_cluster() -> Iterator[object]:
    distributed = pytest.importorskip("distributed", reason="dask.distributed is not installed")
    cluster = distributed.LocalCluster(
        n_workers=2, threads_per_worker=1, processes=False, dashboard_address=None
    )
    yield cluster
    cluster.close()


def test_dask_cluster_matches_local(
    grid: WindGrid, inline_results: list[Prediction], dask_cluster: object
) -> None:
    with DaskExecutor(dask_cluster.scheduler_address) as ex:  # type: ignore[attr-defined]
        assert ex.workers == 2
        got = predict_tracks(_jobs(grid), grid, ex, members_per_task=33)
    for a, b in zip(got, inline_results, strict=True):
        assert_same(a, b)
    assert got[1].notes and "altitude unknown" in got[1].notes[0]


def test_a_failing_task_raises_in_the_caller(grid: WindGrid) -> None:
    bad = EnsembleJob("bad", TrackState(float(grid.time_s[0]), 45.0, 0.0, 18000.0), None, -1.0, 10)
    with LocalExecutor(max_workers=0) as ex, pytest.raises(ValueError, match="hours must be positive"):
        predict_tracks([bad], grid, ex)
    with pytest.raises(ValueError, match="members"):
        EnsembleJob("none", bad.state, None, 1.0, 0)
