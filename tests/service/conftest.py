"""Real components on loopback that the service tests share: a private ``nats-server -js`` per
test, and a throw-away PostgreSQL + PostGIS database (skips when no server answers)."""

from __future__ import annotations

from collections.abc import Iterator
from pathlib import Path

import pytest
from scale_helpers import pg_server, throwaway_database
from test_service_bus_nats import NatsServer


@pytest.fixture
def nats(tmp_path: Path) -> Iterator[NatsServer]:
    srv = NatsServer(tmp_path / "nats")
    srv.store_dir.mkdir()
    srv.start()
    yield srv
    srv.stop()


@pytest.fixture
def pg_url(request: pytest.FixtureRequest) -> Iterator[str]:
    server = pg_server()
    if server is None:
        pytest.skip("no PostgreSQL answers on 127.0.0.1:5432 (or STRATOWATCH_TEST_PG_URL)")
    prefix = "sw_" + request.module.__name__.rsplit(".", 1)[-1].removeprefix("test_service_")[:20]
    with throwaway_database(server, prefix) as url:
        yield url
