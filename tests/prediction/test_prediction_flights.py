"""Validation on the real Oakland radiosonde flights (January 2023, twice a day).

There are no gridded winds for these days, so (as balloon launchers do) the wind profile is
derived from one flight's own ascent and used to predict the next flight, 12 hours later; and
each flight's second half of the ascent is predicted from its own first half (position,
ascent rate) on the previous flight's winds. Errors measured when this was written (km):

    next flight, at burst:           29.5, 17.3, 40.8   (travel to burst 60, 70, 37 km)
    next flight, mean over ascent:   20.1, 10.6, 25.6
    from own half ascent, at burst:   4.1,  4.0,  7.1   (travel from there 19, 21, 9 km)

Tolerances: 50 km at burst and 35 km mean for the next flight, 12 km at burst from the half
ascent, the half-ascent prediction beating the 12-hour-old launch prediction at burst.
"""

from __future__ import annotations

import itertools
from pathlib import Path

import numpy as np
import pytest

from stratowatch.ingest.kml import read_flight
from stratowatch.prediction.validation import check_ascent
from stratowatch.weather.flight_profile import flight_wind_profile

REPO_ROOT = next(p for p in Path(__file__).resolve().parents if (p / "pyproject.toml").exists())
TRACKS = REPO_ROOT.parent / "shared" / "data" / "balloon_tracks"
FILES = sorted(TRACKS.glob("*.kmz")) if TRACKS.is_dir() else []

pytestmark = [
    pytest.mark.shared_data,
    pytest.mark.skipif(len(FILES) < 4, reason=f"needs the 4 radiosonde KMZ flights in {TRACKS}"),
]


@pytest.fixture(scope="module")
def flights():
    return [read_flight(f) for f in FILES]


def test_predicting_the_next_flight_from_the_previous_ones_ascent(flights) -> None:
    for prev, nxt in itertools.pairwise(flights):
        hours_apart = (nxt.time_s[0] - prev.time_s[0]) / 3600.0
        assert 11.0 < hours_apart < 13.0
        check = check_ascent(flight_wind_profile(prev), nxt)
        assert check.burst_error_m < 50e3, f"{nxt.source}: {check.burst_error_m / 1e3:.1f} km at burst"
        assert check.mean_error_m < 35e3
        assert check.error_m[0] == pytest.approx(0.0, abs=1.0)  # starts at the launch point
        assert 4.0 < check.ascent_rate_mps < 7.0


def test_predicting_the_second_half_of_each_ascent_from_its_first_half(flights) -> None:
    for prev, f in itertools.pairwise(flights):
        top = int(np.argmax(f.alt_m))
        half = int(np.searchsorted(f.time_s, f.time_s[0] + 0.5 * (f.time_s[top] - f.time_s[0])))
        grid = flight_wind_profile(prev)
        late = check_ascent(grid, f, start_index=half)
        launch = check_ascent(grid, f)
        assert late.start_alt_m > 12000.0
        assert late.burst_error_m < 12e3, f"{f.source}: {late.burst_error_m / 1e3:.1f} km at burst"
        assert late.burst_error_m < launch.burst_error_m
