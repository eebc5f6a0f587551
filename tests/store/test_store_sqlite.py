"""SQLite store: round trip of observations and quarantine, WAL, batching sink, errors; the R*Tree,
the migration of a file written before migrations existed."""

from __future__ import annotations

import math
import sqlite3
from dataclasses import replace
from pathlib import Path

import pytest

from stratowatch.ingest.base import QuarantineRecord
from stratowatch.model import MeasurementKind, Observation, SourceRef
from stratowatch.store.sqlite import SqliteStore, StoreError, StoreSink


def sample() -> list[Observation]:
    return [
        Observation(
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
        ),
        Observation(
            5.0,
            "sightings",
            MeasurementKind.GROUND_2D,
            (45.9, -112.5),
            (30_000.0,),
            category="sighting",
        ),
        Observation(
            7.5,
            "sonde",
            MeasurementKind.GEODETIC,
            (37.7, -122.2, 1234.5),
            (15.0, 20.0),
            velocity_enu_mps=(1.0, 2.0, 5.0),
            velocity_sigma_mps=1.0,
            identity="sonde:S1",
        ),
    ]


def same(a: Observation, b: Observation) -> bool:
    """Equal, with NaN velocity sigmas counted equal (NaN != NaN in dataclass equality)."""
    if math.isnan(a.velocity_sigma_mps) and math.isnan(b.velocity_sigma_mps):
        a, b = replace(a, velocity_sigma_mps=0.0), replace(b, velocity_sigma_mps=0.0)
    return a == b


def test_round_trip_and_time_order(tmp_path: Path) -> None:
    with SqliteStore(tmp_path / "o.db") as store:
        assert store.journal_mode() == "wal"
        assert store.write_observations(sample()) == 3
        back = store.observations()
        assert [o.time_s for o in back] == [5.0, 7.5, 10.0]
        assert same(back[2], sample()[0])
        assert same(back[1], sample()[2])
        assert back[0].velocity_enu_mps is None and math.isnan(back[0].velocity_sigma_mps)
        assert [o.time_s for o in store.observations(t0=6.0, t1=9.0)] == [7.5]
        q = QuarantineRecord(SourceRef("f.csv", 4), "plots: y_m: not a number", b"1,r,x", "y_m")
        store.write_quarantine([q])
        assert store.quarantine_records() == [q]


def test_committed_data_is_visible_to_another_connection(tmp_path: Path) -> None:
    path = tmp_path / "o.db"
    store = SqliteStore(path)
    store.write_observations(sample())
    other = sqlite3.connect(path)  # a reader in another connection, while the writer is open
    assert other.execute("SELECT COUNT(*) FROM observations").fetchone()[0] == 3
    other.close()
    store.close()
    with SqliteStore(path) as again:  # reopening keeps the data and the schema
        assert again.count() == 3


def test_sink_batches(tmp_path: Path) -> None:
    with SqliteStore(tmp_path / "o.db") as store:
        sink = StoreSink(store, batch_size=2)
        for o in sample():
            sink.observation(o)
        assert store.count() == 2  # one full batch written, one pending
        sink.message("aprs_status")
        sink.quarantine(QuarantineRecord(SourceRef("x", 1), "bad", b"\x00"))
        sink.flush()
        assert store.count() == 3 and store.count("quarantine") == 1
        assert sink.written_observations == 3 and sink.messages == {"aprs_status": 1}


def test_unopenable_database_names_the_file(tmp_path: Path) -> None:
    target = tmp_path / "dir.db"
    target.mkdir()
    with pytest.raises(StoreError, match=str(target)):
        SqliteStore(target)


def test_box_queries_go_through_the_rtree(tmp_path: Path) -> None:
    with SqliteStore(tmp_path / "o.db") as store:
        store.write_observations(sample())
        box = (30.0, -130.0, 50.0, -100.0)
        assert [o.time_s for o in store.observations(bbox=box)] == [5.0, 7.5]
        rtree_rows = store._query("SELECT id, min_lat FROM observations_rtree ORDER BY min_lat")
        # Only the positioned kinds are indexed (GEODETIC at 37.7, GROUND_2D at 45.9), as 32-bit boxes.
        assert [round(r[1], 3) for r in rtree_rows] == [37.7, 45.9]
        store._write(
            lambda cur: cur.execute("DELETE FROM observations_rtree WHERE id = ?", (rtree_rows[0][0],))
        )
        # The query asks the index, not the table: a row the index lacks is not found.
        assert [o.time_s for o in store.observations(bbox=box)] == [5.0]


# The schema the first SqliteStore wrote (before migrations): observations and quarantine only.
_OLD_SCHEMA = """
CREATE TABLE meta (key TEXT PRIMARY KEY, value TEXT NOT NULL);
INSERT INTO meta VALUES ('schema_version', '1');
CREATE TABLE observations (
    id INTEGER PRIMARY KEY, time_s REAL NOT NULL, sensor_id TEXT NOT NULL, kind INTEGER NOT NULL,
    v0 REAL NOT NULL, v1 REAL NOT NULL, v2 REAL, s0 REAL NOT NULL, s1 REAL, s2 REAL,
    vel_e REAL, vel_n REAL, vel_u REAL, vel_sigma REAL, identity TEXT, callsign TEXT, category TEXT,
    releasable_to TEXT NOT NULL, originator TEXT NOT NULL, source TEXT, source_position INTEGER);
CREATE TABLE quarantine (id INTEGER PRIMARY KEY, ingested_s REAL NOT NULL, source TEXT NOT NULL,
    position INTEGER NOT NULL, field TEXT, reason TEXT NOT NULL, raw BLOB NOT NULL);
INSERT INTO observations (time_s, sensor_id, kind, v0, v1, v2, s0, s1, releasable_to, originator)
    VALUES (5.0, 'sonde', 0, 37.7, -122.2, 1234.5, 15.0, 20.0, '["PUBLIC"]', '');
"""


def test_a_file_from_before_migrations_is_upgraded_in_place(tmp_path: Path) -> None:
    path = tmp_path / "old.db"
    old = sqlite3.connect(path)
    old.executescript(_OLD_SCHEMA)
    old.close()
    with SqliteStore(path) as store:
        assert store.count() == 1 and store.count("tracks") == 0
        # The old row got its position and its place in the spatial index.
        assert [o.identity for o in store.observations(bbox=(37.0, -123.0, 38.0, -122.0))] == [None]
        assert store.observations()[0].value == (37.7, -122.2, 1234.5)
    check = sqlite3.connect(path)
    assert check.execute("SELECT version_num FROM alembic_version").fetchone()[0] == "0006"
    check.close()


def test_head_revision_is_alembics_head() -> None:
    from alembic.script import ScriptDirectory

    from stratowatch.store import _migrate

    script = ScriptDirectory.from_config(_migrate.alembic_config())  # type: ignore[arg-type]
    assert script.get_heads() == [_migrate.HEAD_REVISION]
