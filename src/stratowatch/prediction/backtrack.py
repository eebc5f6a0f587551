"""Back-trajectories: where did a drifting object come from?

Runs the ensemble backward in time (float profile) from the track's state and reports, at the
earliest time reached, the probability map of the members' positions and the 50%/90% source
regions (cones; members that left the wind field count at their exit point, noted). Region
arrival on a backward run gives the probability that the object passed through a region, and
the latest time it was there.
"""

from __future__ import annotations

from dataclasses import dataclass, replace

import numpy as np
import numpy.typing as npt

from stratowatch.prediction.cones import Cone, ProbabilityMap, cones, probability_map
from stratowatch.prediction.ensemble import TrackState, ensemble
from stratowatch.prediction.integrate import STATUS_LEFT_FIELD, Prediction, WindErrorModel
from stratowatch.prediction.profiles import FlightProfile
from stratowatch.weather.grid import WindGrid


@dataclass(frozen=True, slots=True)
class SourceRegion:
    """The backward ensemble, and the source regions at its earliest time."""

    prediction: Prediction
    time_s: float
    probability: ProbabilityMap
    regions: list[Cone]


def back_trajectory(
    grid: WindGrid,
    state: TrackState,
    hours: float,
    members: int = 1000,
    *,
    covariance: npt.ArrayLike | None = None,
    profile: FlightProfile | None = None,
    wind_error: WindErrorModel | None = None,
    seed: int = 0,
    cell_deg: float = 0.25,
    levels: tuple[float, ...] = (0.5, 0.9),
) -> SourceRegion:
    """Backward ensemble of ``hours`` from ``state``; source regions at the earliest time."""
    pred = ensemble(
        grid, state, hours, members, covariance=covariance, profile=profile or FlightProfile("float"),
        wind_error=wind_error, seed=seed, backward=True,
    )  # fmt: skip
    last = len(pred.time_s) - 1
    held = pred.held()
    left = int(np.count_nonzero(pred.status == STATUS_LEFT_FIELD))
    if left:
        note = f"{left} of {pred.members} members left the wind field going back; their exit points are used"
        pred = replace(pred, notes=(*pred.notes, note))
    return SourceRegion(
        prediction=pred,
        time_s=float(pred.time_s[last]),
        probability=probability_map(held, cell_deg=cell_deg, time_index=last),
        regions=cones(held, levels=levels, time_index=[last]),
    )
