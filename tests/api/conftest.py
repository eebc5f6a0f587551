"""Fixtures for the API tests: a real SQLite store and in-process bus, a small picture in them,
and the app (TestClient) over a pipeline."""

from __future__ import annotations

from collections.abc import Iterator
from pathlib import Path
from typing import Any

import httpx
import pytest
from api_helpers import Picture, fill
from fastapi.testclient import TestClient

from auth_helpers import bearer
from stratowatch.api import create_app
from stratowatch.config import load_settings
from stratowatch.service.bus import InProcessBus
from stratowatch.service.pipeline import Pipeline
from stratowatch.store import open_store


@pytest.fixture
def store(tmp_path: Path) -> Iterator[Any]:
    s = open_store(f"sqlite:///{tmp_path / 'api.db'}")
    yield s
    s.close()


@pytest.fixture
def bus() -> InProcessBus:
    return InProcessBus()


@pytest.fixture
def pipeline(store: Any, bus: InProcessBus, tmp_path: Path) -> Iterator[Pipeline]:
    """The real pipeline over the store (no winds, predictions or sample sites: nothing the
    tests do not write themselves)."""
    settings = load_settings(
        None,
        env={},
        check_files=False,
        store_url=f"sqlite:///{tmp_path / 'api.db'}",
        predictions={"enabled": False},
        geofences={"sample_sites": False},
    )
    p = Pipeline(settings, store, bus, winds=None, geofences=[])
    yield p
    p.close()


@pytest.fixture
def picture(store: Any) -> Picture:
    return fill(store)


@pytest.fixture
def app(pipeline: Pipeline) -> Any:
    return create_app(pipeline, heartbeat_s=0.2, picture_ttl_s=0.0, freeze_gc=False)


@pytest.fixture
def admin_headers(app: Any) -> dict[str, str]:
    """``Authorization`` of an admin service account of the node's own partner."""
    return bearer(app)


@pytest.fixture
def client(app: Any, admin_headers: dict[str, str]) -> Iterator[TestClient]:
    """A client signed in as an admin (every request carries its bearer token)."""
    with TestClient(app, headers=admin_headers) as c:
        yield c


@pytest.fixture
def anon_client(client: TestClient) -> Iterator[httpx.Client]:
    """A client without credentials (nor cookies of its own yet), over the same running app."""
    with httpx.Client(transport=client._transport, base_url=client.base_url) as c:
        yield c
