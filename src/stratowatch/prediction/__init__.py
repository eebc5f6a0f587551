"""Drift prediction: trajectories, ensembles, cones, region arrival, back-trajectories.

Entry points: :func:`integrate` (members from given positions), :func:`ensemble` and
:func:`predict_track` (members drawn from a track's state and covariance, with a wind-error
model), :func:`cones`, :func:`probability_map`, :func:`region_arrival`,
:func:`back_trajectory` and :func:`altitude_from_drift`.
"""

from stratowatch.prediction.altitude_from_drift import (
    AltitudeLikelihood,
    altitude_from_drift,
    ground_velocity,
)
from stratowatch.prediction.backtrack import SourceRegion, back_trajectory
from stratowatch.prediction.cones import Cone, ProbabilityMap, cones, probability_map
from stratowatch.prediction.ensemble import TrackState, ensemble, predict_track
from stratowatch.prediction.integrate import Prediction, WindErrorModel, integrate
from stratowatch.prediction.profiles import FlightProfile
from stratowatch.prediction.regions import Region, RegionArrival, region_arrival

__all__ = [
    "AltitudeLikelihood",
    "Cone",
    "FlightProfile",
    "Prediction",
    "ProbabilityMap",
    "Region",
    "RegionArrival",
    "SourceRegion",
    "TrackState",
    "WindErrorModel",
    "altitude_from_drift",
    "back_trajectory",
    "cones",
    "ensemble",
    "ground_velocity",
    "integrate",
    "predict_track",
    "probability_map",
    "region_arrival",
]
