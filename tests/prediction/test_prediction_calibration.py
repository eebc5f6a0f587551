"""Cone calibration on simulated flights (a smaller, looser version of bench/cone_calibration.py).

The bench (80 flights x 300 members x 72 h) finds the 90% cone holding the truth 89-93% of the
time over four seeds (target 85-95%). Here 20 flights x 150 members x 48 h: the tolerance is
looser (75-99% for the 90% cone, 25-75% for the 50% cone) because 16 flights give a coverage
estimate with a standard error of about 5 points.
"""

from __future__ import annotations

from stratowatch.prediction import WindErrorModel
from stratowatch.prediction.calibration import calibrate


def test_cones_are_calibrated_on_simulated_flights() -> None:
    cal = calibrate(trials=16, members=100, hours=48.0, seed=11, lead_h=(12.0, 24.0, 36.0, 48.0))
    assert 0.75 <= cal.coverage_90 <= 0.99, cal.coverage_90
    assert 0.25 <= cal.coverage_50 <= 0.75, cal.coverage_50
    assert cal.coverage_90 > cal.coverage_50
    assert cal.median_error_km[-1] > cal.median_error_km[0]  # errors grow with lead


def test_an_overconfident_error_model_is_caught() -> None:
    # with no wind error the cones only hold the start-position spread: the truth escapes them
    cal = calibrate(
        trials=10,
        members=100,
        hours=24.0,
        seed=3,
        lead_h=(12.0, 24.0),
        wind_error=WindErrorModel(0.0, 0.0, 3600.0, 0.0),
    )
    assert cal.coverage_90 < 0.3
