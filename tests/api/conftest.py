"""Fixtures for the API tests: a real SQLite store and in-process bus, a small picture in them,
and the app (TestClient) over a pipeline."""

from __future__ import annotations

from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest
from api_helpers import FakePipeline, Picture, fill
from fastapi.testclient import TestClient

from stratowatch.api import create_app
from stratowatch.service.bus import InProcessBus
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
def pipeline(store: Any, bus: InProcessBus) -> FakePipeline:
    return FakePipeline(store, bus)


@pytest.fixture
def picture(store: Any) -> Picture:
    return fill(store)


@pytest.fixture
def client(pipeline: FakePipeline) -> Iterator[TestClient]:
    with TestClient(create_app(pipeline, heartbeat_s=0.2, picture_ttl_s=0.0, freeze_gc=False)) as c:
        yield c
