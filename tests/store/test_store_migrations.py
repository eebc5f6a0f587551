"""Alembic migrations on both backends: up from nothing, down and up again, data kept."""

from __future__ import annotations

import subprocess
import sys

from stratowatch.model import MeasurementKind, Observation, Track, TrackStatus
from stratowatch.store import _migrate, open_store


def _obs(t: float) -> Observation:
    return Observation(t, "s", MeasurementKind.GEODETIC, (45.0, -110.0, 100.0), (10.0, 10.0))


def _track(t: float) -> Track:
    return Track(
        1,
        t,
        TrackStatus.CONFIRMED,
        45.0,
        -110.0,
        1e4,
        (0.0, 0.0, 0.0),
        (1.0, 1.0, 1.0),
        {},
        (),
        (),
        0.0,
        t,
        1,
    )


def test_down_to_the_baseline_and_up_again_keeps_observations(fresh_url: str) -> None:
    box = (44.0, -111.0, 46.0, -109.0)
    with open_store(fresh_url) as store:  # from an empty database to head
        store.write_observations([_obs(1.0), _obs(2.0)])
        store.write_track_states([_track(1.0)])
        assert store.count("track_states") == 1
    sa_url = _migrate.sqlalchemy_url(fresh_url)
    _migrate.downgrade(sa_url, "0002")  # back to per-row R*Tree triggers on SQLite
    with open_store(fresh_url) as store:  # and up again, at open
        store.write_observations([_obs(3.0)])
        assert [o.time_s for o in store.observations(bbox=box)] == [1.0, 2.0, 3.0]
    _migrate.downgrade(sa_url, "0001")  # the service tables go; observations stay
    with open_store(fresh_url) as store:
        assert store.count("track_states") == 0 and store.count("observations") == 3
        # Positions of the old rows were backfilled and indexed again on the way up.
        assert [o.time_s for o in store.observations(bbox=box)] == [1.0, 2.0, 3.0]
        store.write_track_states([_track(4.0)])
        assert [t.time_s for t in store.history_in_box(0.0, 10.0, box)] == [4.0]


def test_processes_opening_a_new_database_together_all_succeed(fresh_url: str) -> None:
    code = (
        "import sys; from stratowatch.store import open_store\n"
        "s = open_store(sys.argv[1]); print(s.count('tracks')); s.close()"
    )
    procs = [
        subprocess.Popen(
            [sys.executable, "-c", code, fresh_url], stdout=subprocess.PIPE, stderr=subprocess.PIPE
        )
        for _ in range(4)
    ]
    results = [p.communicate(timeout=60) for p in procs]
    assert [p.returncode for p in procs] == [0] * 4, [err.decode()[-500:] for _, err in results]
    assert [out.strip() for out, _ in results] == [b"0"] * 4
