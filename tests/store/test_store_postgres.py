"""PostgreSQL specifics: PostGIS geometry kept in step with lat/lon, GiST index used, URLs, errors."""

from __future__ import annotations

from typing import Any

import pytest

from stratowatch.model import MeasurementKind, Observation
from stratowatch.store import StoreError, open_store


def test_geometry_and_gist_index(pg_url: str) -> None:
    psycopg: Any = pytest.importorskip("psycopg")
    with open_store(pg_url) as store:
        store.write_observations(
            [
                Observation(
                    float(i), "s", MeasurementKind.GEODETIC, (45.0 + i * 1e-3, -110.0, 1.0), (1.0, 1.0)
                )
                for i in range(50)
            ]
        )
    with psycopg.connect(pg_url, autocommit=True) as conn:
        x, y = conn.execute("SELECT ST_X(geom), ST_Y(geom) FROM observations WHERE time_s = 3").fetchone()
        assert (x, y) == (-110.0, 45.003)
        indexes = {
            r[0] for r in conn.execute("SELECT indexname FROM pg_indexes WHERE indexdef LIKE '%USING gist%'")
        }
        assert {"observations_geom", "track_states_geom", "tracks_geom"} <= indexes
        conn.execute("SET enable_seqscan = off")
        plan = "\n".join(
            r[0]
            for r in conn.execute(
                "EXPLAIN SELECT id FROM observations WHERE geom && ST_MakeEnvelope(-111, 44, -109, 46, 4326)"
            )
        )
        assert "observations_geom" in plan


def test_missing_database_and_unreachable_server_are_clear(pg_missing_database_url: str) -> None:
    with pytest.raises(StoreError, match=r"cannot connect: .*sw_missing_"):
        open_store(pg_missing_database_url)
    with pytest.raises(StoreError, match=r"postgresql://nobody@127.0.0.1:1/db: cannot connect"):
        open_store("postgresql://nobody:secret@127.0.0.1:1/db")
