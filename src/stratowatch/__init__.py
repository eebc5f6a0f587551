"""stratowatch: a shared, live picture of high-altitude balloons, aircraft and unknown objects."""

from stratowatch.model import (
    PUBLIC,
    MeasurementKind,
    Observation,
    ObservationBatch,
    Sensor,
    SourceRef,
    Track,
    TrackStatus,
)

__version__ = "0.1.0"

__all__ = [
    "PUBLIC",
    "MeasurementKind",
    "Observation",
    "ObservationBatch",
    "Sensor",
    "SourceRef",
    "Track",
    "TrackStatus",
    "__version__",
]
