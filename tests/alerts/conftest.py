"""Shared fixtures for the alerts tests: a Track factory and the path to the real sample data."""

from __future__ import annotations

from collections.abc import Callable
from pathlib import Path

import pytest

from stratowatch.model import Classification, ObjectClass, Track, TrackStatus

REPO_ROOT = next(p for p in Path(__file__).resolve().parents if (p / "pyproject.toml").exists())
GEO_DIR = REPO_ROOT.parent / "shared" / "data" / "geo"

TrackFactory = Callable[..., Track]


def _make_track(
    track_id: int,
    lat: float,
    lon: float,
    alt: float = 18_000.0,
    time_s: float = 0.0,
    *,
    status: TrackStatus = TrackStatus.CONFIRMED,
    label: ObjectClass | None = ObjectClass.BALLOON,
    probability: float = 0.93,
    identities: tuple[str, ...] = (),
    last_update_s: float | None = None,
) -> Track:
    cls = (
        None
        if label is None
        else Classification(label, probability, {label.name.lower(): probability}, ("test",))
    )
    return Track(
        track_id=track_id,
        time_s=time_s,
        status=status,
        lat_deg=lat,
        lon_deg=lon,
        alt_m=alt,
        velocity_enu_mps=(5.0, 0.0, 0.0),
        position_sigma_m=(100.0, 100.0, 100.0),
        model_probabilities={"cv": 1.0},
        identities=identities,
        sensors=("radar-1",),
        first_time_s=0.0,
        last_update_s=time_s if last_update_s is None else last_update_s,
        n_updates=10,
        classification=cls,
    )


@pytest.fixture
def make_track() -> TrackFactory:
    return _make_track


@pytest.fixture
def geo_dir() -> Path:
    if not GEO_DIR.is_dir():
        pytest.skip(f"real geo data not present at {GEO_DIR}")
    return GEO_DIR
