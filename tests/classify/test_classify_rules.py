"""Classification evidence: speed, altitude, identity, emitter category and wind match."""

from __future__ import annotations

import numpy as np

from stratowatch.classify.rules import Features, classify_features
from stratowatch.classify.wind import WindMatch
from stratowatch.model import ObjectClass


def _features(n: int, **kw: object) -> Features:
    base: dict[str, object] = {
        "speed_mps": np.full(n, 50.0),
        "alt_m": np.full(n, 15_000.0),
        "climb_mps": np.zeros(n),
        "p_manoeuvre": np.zeros(n),
        "p_drift": np.full(n, 0.5),
        "identity_kind": [""] * n,
        "n_updates": np.full(n, 10, np.int64),
    }
    base.update(kw)
    return Features(**base)  # type: ignore[arg-type]


def test_speed_and_altitude_separate_balloons_from_airliners() -> None:
    f = _features(
        2, speed_mps=np.array([15.0, 230.0]), alt_m=np.array([19_000.0, 11_000.0]), identity_kind=["", ""]
    )
    balloon, airliner = classify_features(f)
    assert balloon.label == ObjectClass.BALLOON and balloon.probability > 0.9
    assert airliner.label == ObjectClass.AIRCRAFT and airliner.probability > 0.95
    assert "15 m/s ground speed: balloon-like" in balloon.reasons
    assert "19.0 km altitude: balloon-like" in balloon.reasons


def test_lighter_than_air_emitter_category_overrides_the_transponder() -> None:
    f = _features(
        3,
        speed_mps=np.array([20.0, 20.0, 20.0]),
        alt_m=np.array([12_000.0, 12_000.0, 12_000.0]),
        identity_kind=["icao", "icao", ""],
        category=["B2", "A3", "ecat:11"],
    )
    b2, a3, ecat = classify_features(f)
    assert b2.label == ObjectClass.BALLOON
    assert "emitter category B2 (lighter than air): balloon" in b2.reasons
    assert a3.label != ObjectClass.BALLOON and "transponder (ICAO address): aircraft-like" in a3.reasons
    assert ecat.label == ObjectClass.BALLOON


def test_wind_match_turns_an_ambiguous_track_into_a_balloon() -> None:
    f = _features(1)  # 50 m/s at 15 km, no identity: unknown on its own
    (alone,) = classify_features(f)
    assert alone.label == ObjectClass.UNKNOWN
    match = WindMatch(
        wind_enu_mps=np.array([[49.0, 1.0]]),
        mismatch_mps=np.array([1.4]),
        pressure_hpa=np.array([125.0]),
        llr=np.array([1.5]),
        usable=np.array([True]),
    )
    (windy,) = classify_features(_features(1, wind=match))
    assert windy.label == ObjectClass.BALLOON
    assert "drifts with the 125 hPa wind within 2 m/s: balloon-like" in windy.reasons
    assert windy.probabilities["balloon"] > alone.probabilities["balloon"]


def test_too_few_updates_stay_unknown_and_say_why() -> None:
    (c,) = classify_features(
        _features(1, speed_mps=np.array([10.0]), alt_m=np.array([20_000.0]), n_updates=np.array([2]))
    )
    assert c.label == ObjectClass.UNKNOWN
    assert "only 2 updates: too early to say" in c.reasons
