"""The HTTP boundary's schemas (pydantic lives only here).

Routers build plain JSON dicts with :mod:`stratowatch.api.convert` (fast, no re-validation on the
hot path) and declare these models as their ``response_model``: the models define the OpenAPI
schema, and the API tests validate every response body against them, so the two cannot drift.
Request bodies (geofences, acknowledge, resolve) are validated by these models on the way in.

Units are in the field names; non-finite numbers (an open altitude band, a sensor without a site)
are ``null``.
"""

from __future__ import annotations

from typing import Any, Generic, Literal, TypeVar

from pydantic import BaseModel, ConfigDict, Field, model_validator

T = TypeVar("T")


class ErrorDetail(BaseModel):
    code: str = Field(description="Machine-readable error code, e.g. 'not_found', 'invalid_request'.")
    message: str = Field(description="One line for people.")
    details: Any = Field(default=None, description="What exactly was wrong (field errors, the id).")


class ErrorBody(BaseModel):
    """Every error the API returns has this body."""

    error: ErrorDetail


class Page(BaseModel, Generic[T]):
    """A page of a list: ``total`` items match the filters; this page starts at ``offset``."""

    items: list[T]
    total: int
    limit: int
    offset: int


class ClassificationOut(BaseModel):
    label: Literal["unknown", "balloon", "aircraft"]
    probability: float
    probabilities: dict[str, float]
    reasons: list[str]


class TrackOut(BaseModel):
    track_id: int
    time_s: float
    status: Literal["tentative", "confirmed", "coasting", "ended"]
    lat_deg: float
    lon_deg: float
    alt_m: float | None
    velocity_enu_mps: list[float | None] = Field(description="East, north, up (m/s).")
    speed_mps: float | None = Field(description="Horizontal speed (m/s).")
    position_sigma_m: list[float | None] = Field(description="1-sigma east, north, up (m).")
    velocity_sigma_mps: list[float | None] | None = Field(
        default=None, description="1-sigma velocity east, north, up (m/s); live tracks only."
    )
    model_probabilities: dict[str, float]
    identities: list[str]
    sensors: list[str]
    first_time_s: float
    last_update_s: float
    n_updates: int
    classification: ClassificationOut | None


class SourceOut(BaseModel):
    source: str = Field(description="File or stream name.")
    position: int = Field(description="Line, record or byte offset in it.")


class ObservationOut(BaseModel):
    time_s: float
    sensor_id: str
    kind: Literal["geodetic", "ground_2d", "polar", "polar_height", "local_xyz"]
    value: list[float]
    sigma: list[float]
    velocity_enu_mps: list[float] | None
    velocity_sigma_mps: float | None
    identity: str | None
    callsign: str | None
    category: str | None
    releasable_to: list[str]
    originator: str
    source: SourceOut | None


class SensorOut(BaseModel):
    sensor_id: str
    owner: str
    kind: str
    name: str
    lat_deg: float | None
    lon_deg: float | None
    alt_m: float | None
    max_range_m: float | None
    max_elevation_deg: float | None
    p_detect: float | None
    sigma_range_m: float | None
    sigma_azimuth_deg: float | None
    sigma_elevation_deg: float | None
    sigma_h_m: float | None
    sigma_v_m: float | None
    update_period_s: float | None
    releasable_to: list[str]
    site_releasable_to: list[str] | None = None


class AlertOut(BaseModel):
    alert_id: str
    time_s: float
    rule: str
    severity: str
    message: str
    track_id: int | None
    geofence_id: str | None
    details: dict[str, Any]
    incident_id: str | None
    acknowledged_by: str | None
    acknowledged_s: float | None
    releasable_to: list[str]
    audience: str = ""
    originator: str = ""


class IncidentOut(BaseModel):
    incident_id: str
    opened_s: float
    updated_s: float
    status: str = Field(description="open | tracking | resolved")
    title: str
    track_ids: list[int]
    alert_ids: list[str]
    history: list[tuple[float, str, str]] = Field(description="[time_s, who, what] entries, oldest first.")
    releasable_to: list[str]
    audience: str = ""
    originator: str = ""


class GeofenceIn(BaseModel):
    """A geofence to create or replace. ``coordinates`` are [lat_deg, lon_deg] pairs."""

    model_config = ConfigDict(extra="forbid")

    geofence_id: str = Field(min_length=1, max_length=200, pattern=r"^[A-Za-z0-9_.:\-]+$")
    name: str = Field(min_length=1, max_length=500)
    kind: Literal["circle", "polygon", "line"]
    coordinates: list[tuple[float, float]] = Field(min_length=1)
    radius_m: float = Field(default=0.0, ge=0.0)
    min_alt_m: float | None = None
    max_alt_m: float | None = None
    severity: Literal["info", "warning", "critical"] = "warning"
    source: str = ""
    releasable_to: list[str] = Field(default_factory=lambda: ["PUBLIC"])

    @model_validator(mode="after")
    def _shape(self) -> GeofenceIn:
        for i, (lat, lon) in enumerate(self.coordinates):
            if not (-90.0 <= lat <= 90.0 and -180.0 <= lon <= 180.0):
                raise ValueError(f"coordinates[{i}] = [{lat}, {lon}] is not a [lat_deg, lon_deg] pair")
        need = {"circle": 1, "polygon": 3, "line": 2}[self.kind]
        if self.kind == "circle" and len(self.coordinates) != 1:
            raise ValueError("a circle has exactly one coordinate pair (its centre)")
        if len(self.coordinates) < need:
            raise ValueError(f"a {self.kind} needs at least {need} coordinate pairs")
        if self.kind == "circle" and not self.radius_m > 0:
            raise ValueError("a circle needs radius_m > 0")
        if self.min_alt_m is not None and self.max_alt_m is not None and self.min_alt_m > self.max_alt_m:
            raise ValueError("min_alt_m is above max_alt_m")
        return self


class GeofenceOut(BaseModel):
    geofence_id: str
    name: str
    kind: str
    coordinates: list[tuple[float, float]]
    radius_m: float
    min_alt_m: float | None
    max_alt_m: float | None
    severity: str
    source: str
    releasable_to: list[str]


class AcknowledgeIn(BaseModel):
    model_config = ConfigDict(extra="forbid")

    who: str = Field(min_length=1, max_length=200, description="Who acknowledges (an operator name).")


class ResolveIn(BaseModel):
    model_config = ConfigDict(extra="forbid")

    who: str = Field(min_length=1, max_length=200)
    note: str = Field(default="", max_length=5000)


class RegionArrivalOut(BaseModel):
    geofence_id: str
    probability: float
    earliest_s: float | None
    median_s: float | None


class ArrivalRowOut(RegionArrivalOut):
    """A predicted arrival of one track at one geofence."""

    track_id: int


class FeatureCollectionOut(BaseModel):
    """A GeoJSON FeatureCollection (lon, lat, alt coordinates)."""

    type: Literal["FeatureCollection"]
    features: list[dict[str, Any]]


class AuditOut(BaseModel):
    id: int
    time_s: float
    actor: str
    action: str
    details: dict[str, Any]


class PredictionOut(BaseModel):
    """The latest prediction stored for a track: the GeoJSON paths and cones and the arrivals."""

    track_id: int
    time_s: float | None
    hours: float | None = Field(default=None, description="Prediction horizon (h).")
    members: int | None = Field(default=None, description="Ensemble members.")
    source: str | None = Field(default=None, description="The wind field used.")
    notes: list[str] = Field(default_factory=list)
    error: str | None = Field(default=None, description="Why the prediction failed, when it did.")
    arrivals: list[RegionArrivalOut]
    geojson: dict[str, Any] = Field(description="FeatureCollection: cones, median and deterministic paths.")


class HealthOut(BaseModel):
    status: Literal["ok", "degraded"]
    time_s: float
    uptime_s: float
    counts: dict[str, int] | None = None  # the node's own principals only
    pipeline: dict[str, Any] | None = None
