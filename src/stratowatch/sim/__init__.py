"""Scenario simulator and tracking metrics, used by the demo, the tests and the benchmarks."""

from stratowatch.sim.metrics import PointSet, ScoreResult, gospa, score_tracks
from stratowatch.sim.scenario import (
    Scenario,
    ScenarioConfig,
    TargetTruth,
    TruthPoints,
    generate_scenario,
)

__all__ = [
    "PointSet",
    "Scenario",
    "ScenarioConfig",
    "ScoreResult",
    "TargetTruth",
    "TruthPoints",
    "generate_scenario",
    "gospa",
    "score_tracks",
]
