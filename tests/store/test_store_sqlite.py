"""SQLite store: round trip of observations and quarantine, WAL, batching sink, errors."""

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
        assert [o.time_s for o in store.observations(6.0, 10.0)] == [7.5]
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
