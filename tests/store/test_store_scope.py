"""Releasability in the store: what each audience may read, enforced by the store itself.

SQLite applies the rule in the store layer (a rewritten query); PostgreSQL with row-level
security policies. The property test writes the same random rows to both and checks that every
audience reads exactly the same rows from each, and exactly the rows the label rule allows.
"""

from __future__ import annotations

import math
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from stratowatch.model import PUBLIC, Alert, Geofence, Incident, MeasurementKind, Observation, Sensor, Track
from stratowatch.model import TrackStatus as TS
from stratowatch.sharing.labels import visible
from stratowatch.store import open_store
from stratowatch.store._sql import scope
from stratowatch.store.base import TABLES
from stratowatch.store.scoped import PartnerWriteError, ScopedStore

LABELS = [PUBLIC, frozenset({"CAN"}), frozenset({"USA"}), frozenset({"CAN", "USA"}), frozenset()]
AUDIENCES = ["", "CAN", "USA"]
READERS = ["", "CAN", "USA", "GBR"]  # GBR: a partner this node keeps no picture for


def _obs(i: int, label: frozenset[str]) -> Observation:
    return Observation(
        time_s=1000.0 + i,
        sensor_id=f"s{i % 3}",
        kind=MeasurementKind.GEODETIC,
        value=(45.0 + 0.01 * i, -100.0, 18_000.0),
        sigma=(50.0, 50.0),
        releasable_to=label,
        originator="CAN",
    )


def _track(i: int, audience: str, label: frozenset[str]) -> Track:
    return Track(
        track_id=i + 1,
        time_s=1000.0 + i,
        status=TS.CONFIRMED,
        lat_deg=45.0,
        lon_deg=-100.0 + 0.01 * i,
        alt_m=18_000.0,
        velocity_enu_mps=(5.0, 1.0, 0.0),
        position_sigma_m=(100.0, 100.0, 50.0),
        model_probabilities={"balloon_drift": 1.0},
        identities=(),
        sensors=("s0",),
        first_time_s=900.0,
        last_update_s=1000.0 + i,
        n_updates=3,
        releasable_to=label,
        audience=audience,
    )


rows = st.lists(st.tuples(st.sampled_from(AUDIENCES), st.sampled_from(LABELS)), min_size=1, max_size=12)


def _fill(store: Any, data: list[tuple[str, frozenset[str]]]) -> None:
    store.write_observations([_obs(i, label) for i, (_, label) in enumerate(data)])
    store.write_track_states([_track(i, aud, label) for i, (aud, label) in enumerate(data)])
    for i, (aud, label) in enumerate(data):
        store.write_alert(
            Alert(
                f"a{i}",
                1000.0 + i,
                "new_unidentified",
                "warning",
                "m",
                i + 1,
                releasable_to=label,
                audience=aud,
            )
        )
        store.write_incident(
            Incident(f"inc{i}", 1000.0, "open", "t", (i + 1,), (f"a{i}",), releasable_to=label, audience=aud)
        )
        store.write_prediction(i + 1, 1000.0 + i, {"track_id": i + 1}, aud)
        store.write_sensor(
            Sensor(f"radar{i}", owner="CAN", lat_deg=50.0, lon_deg=-110.0, releasable_to=label)
        )
        store.write_geofence(
            Geofence(f"g{i}", "site", "circle", ((45.0, -100.0),), 1000.0, releasable_to=label)
        )
    store.audit("admin", "test", {"i": len(data)})


def _view(store: Any, audience: str) -> dict[str, Any]:
    s = ScopedStore(store, audience)
    return {
        "observations": sorted(o.time_s for o in s.observations(limit=None)),
        "count_observations": s.count_observations(),
        "tracks": [t.track_id for t in s.tracks(limit=None)],
        "count_tracks": s.count_tracks(),
        "history": [t.track_id for t in s.history_in_box(0, 1e9, (-90, -180, 90, 180))],
        "alerts": sorted(a.alert_id for a in s.alerts(limit=None)),
        "count_alerts": s.count_alerts(),
        "incidents": sorted(i.incident_id for i in s.incidents(limit=None)),
        "predictions": [i for i in range(1, 13) if s.prediction(i) is not None],
        "sensors": [x.sensor_id for x in s.sensors()],
        "geofences": [g.geofence_id for g in s.geofences()],
        "audit": len(s.audit_log(limit=None)),
        "partners_count": s.count("audit_log"),
    }


def _expected(data: list[tuple[str, frozenset[str]]], audience: str) -> dict[str, Any]:
    derived = [i for i, (aud, _) in enumerate(data) if aud == audience]
    labelled = [i for i, (_, label) in enumerate(data) if not audience or visible(label, audience)]
    return {
        "observations": [1000.0 + i for i in labelled],
        "count_observations": len(labelled),
        "tracks": [i + 1 for i in derived],
        "count_tracks": len(derived),
        "history": [i + 1 for i in derived],
        "alerts": sorted(f"a{i}" for i in derived),
        "count_alerts": len(derived),
        "incidents": sorted(f"inc{i}" for i in derived),
        "predictions": [i + 1 for i in derived],
        "sensors": sorted(f"radar{i}" for i in labelled),
        "geofences": sorted(f"g{i}" for i in labelled),
        "audit": 1 if not audience else 0,
        "partners_count": 1 if not audience else 0,
    }


def empty_tables(url: str) -> None:
    import psycopg

    with psycopg.connect(url, autocommit=True) as conn:
        conn.execute(f"TRUNCATE {', '.join(TABLES)} RESTART IDENTITY")


@pytest.fixture
def both(tmp_path: Path, pg_url: str) -> Iterator[tuple[Any, Any, str]]:
    sqlite = open_store(f"sqlite:///{tmp_path / 'a.db'}")
    pg = open_store(pg_url)
    try:
        yield sqlite, pg, pg_url
    finally:
        sqlite.close()
        pg.close()


@settings(max_examples=12, deadline=None, suppress_health_check=[HealthCheck.function_scoped_fixture])
@given(data=rows)
def test_both_backends_show_each_audience_the_same_rows_and_only_those_released(
    both: tuple[Any, Any, str], data: list[tuple[str, frozenset[str]]]
) -> None:
    sqlite, pg, url = both
    for store in (sqlite, pg):
        _clear(store, url if store is pg else None)
        _fill(store, data)
    for audience in READERS:
        want = _expected(data, audience)
        got_sqlite, got_pg = _view(sqlite, audience), _view(pg, audience)
        assert got_sqlite == got_pg, f"backends disagree for audience {audience!r}"
        assert got_sqlite == want, f"audience {audience!r} reads what it may not (or misses its own)"


def _clear(store: Any, pg_url: str | None) -> None:
    if pg_url is not None:
        empty_tables(pg_url)
        return
    tables = (
        "observations",
        "tracks",
        "track_states",
        "alerts",
        "incidents",
        "predictions",
        "sensors",
        "geofences",
        "audit_log",
    )
    for table in tables:
        store._write(lambda cur, t=table: cur.execute(f"DELETE FROM {t}"))


def test_postgres_row_level_security_holds_for_raw_sql(pg_url: str) -> None:
    """The policies themselves: a session as the reader role sees only its audience's rows, and
    nothing at all until it says which audience it reads for."""
    import psycopg

    with open_store(pg_url) as store:
        _fill(store, [("", PUBLIC), ("USA", frozenset({"USA"})), ("", frozenset({"CAN"}))])
    with psycopg.connect(pg_url, autocommit=True) as conn:
        with conn.transaction():
            conn.execute("SET LOCAL ROLE stratowatch_reader")
            assert conn.execute("SELECT count(*) FROM tracks").fetchone() == (0,)
            assert conn.execute("SELECT count(*) FROM observations").fetchone() == (0,)
        with conn.transaction():
            conn.execute("SET LOCAL ROLE stratowatch_reader")
            conn.execute("SELECT set_config('stratowatch.audience', 'USA', true)")
            assert conn.execute("SELECT track_id FROM tracks").fetchall() == [(2,)]
            assert conn.execute("SELECT count(*) FROM observations").fetchone() == (2,)  # PUBLIC + USA
            assert conn.execute("SELECT count(*) FROM audit_log").fetchone() == (0,)
            assert conn.execute("SELECT count(*) FROM state").fetchone() == (0,)
        with conn.transaction():  # after a scoped read the setting is '' again: still nothing
            conn.execute("SET LOCAL ROLE stratowatch_reader")
            assert conn.execute("SELECT count(*) FROM observations").fetchone() == (0,)
            assert conn.execute("SELECT count(*) FROM tracks").fetchone() == (0,)
            with pytest.raises(psycopg.errors.InsufficientPrivilege):
                conn.execute("DELETE FROM tracks")


def test_redactions_withhold_whole_kinds_of_data(tmp_path: Path) -> None:
    with open_store(f"sqlite:///{tmp_path / 's.db'}") as store:
        _fill(store, [("USA", PUBLIC), ("USA", frozenset({"USA"}))])
        usa = ScopedStore(store, "USA", redact={"observations", "sensor_sites", "alerts", "predictions"})
        assert usa.observations(limit=None) == [] and usa.count_observations() == 0
        assert usa.count("observations") == 0
        assert usa.alerts(limit=None) == [] and usa.alert("a0") is None and usa.count_alerts() == 0
        assert usa.prediction(1) is None
        sensors = usa.sensors()
        assert sensors and all(math.isnan(s.lat_deg) and math.isnan(s.lon_deg) for s in sensors)
        assert [t.track_id for t in usa.tracks(limit=None)] == [1, 2]  # tracks are shared
        with pytest.raises(PartnerWriteError):
            usa.write_geofence(Geofence("x", "x", "circle", ((0.0, 0.0),), 1.0))
        own = ScopedStore(store, "", redact={"observations"})  # the node's own users: no redaction
        assert own.count_observations() == 2


def test_scope_is_per_call_and_does_not_leak_into_unscoped_reads(tmp_path: Path) -> None:
    with open_store(f"sqlite:///{tmp_path / 's.db'}") as store:
        _fill(store, [("USA", frozenset({"USA"})), ("", frozenset({"CAN"}))])
        with scope("USA"):
            assert store.count_tracks() == 1
        assert store.count_tracks() == 2  # unscoped: the service's own internal reads
