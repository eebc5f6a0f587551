"""The Store protocol: what the service keeps, and how it asks for it back.

Two implementations speak it: :class:`~stratowatch.store.sqlite.SqliteStore` (embedded, the
default) and :class:`~stratowatch.store.postgres.PostgresStore` (PostgreSQL + PostGIS, for many
users). Both have the same schema (created by the Alembic migrations in
``stratowatch/store/migrations``) and pass the same tests.

Conventions shared by every method:

- Times are POSIX seconds UTC. Time windows ``t0``/``t1`` are inclusive at both ends; ``None``
  leaves that end open.
- A box is ``(min_lat, min_lon, max_lat, max_lon)`` in degrees, inclusive. ``min_lon > max_lon``
  means the box crosses the antimeridian (e.g. ``(50, 170, 60, -160)`` around the Aleutians).
- Lists are paged with ``limit``/``offset``; ``limit=None`` returns every match. The matching
  ``count_*`` method (same filters, no paging) gives the total for pagination.
- Every write is one transaction, committed before the method returns: what a method
  acknowledged survives a crash or ``kill -9`` of the process.
"""

from __future__ import annotations

import math
from collections.abc import Mapping, Sequence
from dataclasses import dataclass, fields
from types import TracebackType
from typing import Any, Protocol, runtime_checkable

from stratowatch.ingest.base import QuarantineRecord
from stratowatch.model import Alert, Geofence, Incident, Observation, Sensor, Track

Box = tuple[float, float, float, float]

#: Tables :meth:`Store.count` knows.
TABLES = (
    "observations",
    "quarantine",
    "tracks",
    "track_states",
    "predictions",
    "alerts",
    "incidents",
    "sensors",
    "partners",
    "geofences",
    "audit_log",
    "state",
    "principals",
    "revoked_tokens",
    "cell_leases",
)

_DAY_S = 86_400.0


class StoreError(RuntimeError):
    """The database cannot be opened or written; the message names the database."""


class LeaseLost(StoreError):
    """A cell's work was not committed: its lease no longer names the worker (another took it)."""


@dataclass(frozen=True, slots=True)
class RetentionSettings:
    """How long rows are kept, per table (seconds; ``None`` keeps them for ever).

    Tracks and incidents are only removed once they are over: an ended track whose last state is
    older than ``ended_tracks_max_age_s``, a resolved incident not updated for
    ``resolved_incidents_max_age_s``. Predictions of a track are removed with their age alone.
    """

    observations_max_age_s: float | None = 7 * _DAY_S
    quarantine_max_age_s: float | None = 30 * _DAY_S
    track_states_max_age_s: float | None = 30 * _DAY_S
    ended_tracks_max_age_s: float | None = 30 * _DAY_S
    predictions_max_age_s: float | None = 7 * _DAY_S
    alerts_max_age_s: float | None = 365 * _DAY_S
    resolved_incidents_max_age_s: float | None = 365 * _DAY_S
    audit_log_max_age_s: float | None = None

    def __post_init__(self) -> None:
        for f in fields(self):
            v = getattr(self, f.name)
            if v is not None and not (math.isfinite(v) and v > 0):
                raise ValueError(
                    f"retention {f.name}: must be a positive number of seconds or None, got {v!r}"
                )

    @classmethod
    def from_mapping(cls, values: Mapping[str, Any]) -> RetentionSettings:
        """From settings such as ``{"observations_max_age_s": 3600}``; unknown keys are an error."""
        known = {f.name for f in fields(cls)}
        unknown = sorted(set(values) - known)
        if unknown:
            raise ValueError(
                f"retention: unknown setting(s) {', '.join(unknown)}; known: {', '.join(sorted(known))}"
            )
        return cls(**{k: (None if v is None else float(v)) for k, v in values.items()})


@runtime_checkable
class Store(Protocol):
    """Everything the live service keeps. Methods are synchronous and thread-safe."""

    # observations and quarantine
    def write_observations(self, observations: Sequence[Observation]) -> int: ...
    def write_quarantine(self, records: Sequence[QuarantineRecord]) -> int: ...
    def observations(
        self,
        *,
        t0: float | None = None,
        t1: float | None = None,
        bbox: Box | None = None,
        sensor_id: str | None = None,
        limit: int | None = 100,
        offset: int = 0,
    ) -> list[Observation]: ...
    def count_observations(
        self,
        *,
        t0: float | None = None,
        t1: float | None = None,
        bbox: Box | None = None,
        sensor_id: str | None = None,
    ) -> int: ...
    def quarantine_records(self, *, limit: int | None = None, offset: int = 0) -> list[QuarantineRecord]: ...

    # tracks
    def write_track_states(self, tracks: Sequence[Track], history: Sequence[bool] | None = None) -> None: ...
    def end_tracks(self, track_ids: Sequence[int], time_s: float) -> None: ...
    def tracks(
        self,
        *,
        status: str | None = None,
        cls: str | None = None,
        min_alt_m: float | None = None,
        max_alt_m: float | None = None,
        bbox: Box | None = None,
        since_s: float | None = None,
        identity_regex: str | None = None,
        limit: int | None = 100,
        offset: int = 0,
    ) -> list[Track]: ...
    def count_tracks(
        self,
        *,
        status: str | None = None,
        cls: str | None = None,
        min_alt_m: float | None = None,
        max_alt_m: float | None = None,
        bbox: Box | None = None,
        since_s: float | None = None,
        identity_regex: str | None = None,
    ) -> int: ...
    def track(self, track_id: int) -> Track | None: ...
    def track_history(
        self, track_id: int, t0: float | None = None, t1: float | None = None
    ) -> list[Track]: ...
    def history_in_box(self, t0: float, t1: float, bbox: Box, *, limit: int | None = None) -> list[Track]: ...

    # predictions, alerts, incidents
    def write_prediction(
        self, track_id: int, time_s: float, payload: Mapping[str, Any], audience: str = ""
    ) -> None: ...
    def prediction(self, track_id: int) -> dict[str, Any] | None: ...
    def write_alert(self, alert: Alert) -> None: ...
    def alerts(
        self,
        *,
        since_s: float | None = None,
        rule: str | None = None,
        acknowledged: bool | None = None,
        limit: int | None = 100,
        offset: int = 0,
    ) -> list[Alert]: ...
    def count_alerts(
        self, *, since_s: float | None = None, rule: str | None = None, acknowledged: bool | None = None
    ) -> int: ...
    def alert(self, alert_id: str) -> Alert | None: ...
    def write_incident(self, incident: Incident) -> None: ...
    def incidents(
        self, *, status: str | None = None, limit: int | None = 100, offset: int = 0
    ) -> list[Incident]: ...
    def count_incidents(self, *, status: str | None = None) -> int: ...
    def incident(self, incident_id: str) -> Incident | None: ...

    # configuration-like records
    def write_sensor(self, sensor: Sensor) -> None: ...
    def sensors(self) -> list[Sensor]: ...
    def write_partner(self, partner_id: str, details: Mapping[str, Any]) -> None: ...
    def partners(self) -> list[dict[str, Any]]: ...
    def write_geofence(self, geofence: Geofence) -> None: ...
    def geofences(self) -> list[Geofence]: ...
    def delete_geofence(self, geofence_id: str) -> bool: ...

    # audit, state, housekeeping
    def audit(
        self, actor: str, action: str, details: Mapping[str, Any], time_s: float | None = None
    ) -> None: ...
    def audit_many(self, records: Sequence[tuple[str, str, Mapping[str, Any], float]]) -> None: ...
    def audit_log(self, limit: int | None = 100, offset: int = 0) -> list[dict[str, Any]]: ...
    def verify_audit(self) -> Any: ...
    def save_state(self, key: str, blob: bytes) -> None: ...
    def write_principal(
        self,
        principal_id: str,
        partner: str,
        kind: str,
        scopes: Sequence[str],
        secret_hash: str,
        *,
        disabled: bool = False,
        details: Mapping[str, Any] | None = None,
        created_s: float | None = None,
    ) -> None: ...
    def principal(self, principal_id: str) -> dict[str, Any] | None: ...
    def principals(self) -> list[dict[str, Any]]: ...
    def disable_principal(self, principal_id: str) -> bool: ...
    def revoke_token(self, jti: str, expires_s: float) -> None: ...
    def token_revoked(self, jti: str) -> bool: ...
    def load_state(self, key: str) -> bytes | None: ...
    def apply_retention(self, now_s: float) -> dict[str, int]: ...

    # scale-out: leases of geographic cells and a cell's step committed at once
    def claim_cells(self, owner: str, cell_ids: Sequence[int], lease_s: float, now: float) -> list[int]: ...
    def renew_cells(self, owner: str, cell_ids: Sequence[int], lease_s: float, now: float) -> list[int]: ...
    def release_cells(self, owner: str, cell_ids: Sequence[int]) -> None: ...
    def cell_leases(self) -> dict[int, tuple[str, float]]: ...
    def commit_cell(
        self,
        cell_id: int,
        owner: str,
        *,
        observations: Sequence[Observation],
        obs_ids: Sequence[str],
        tracks: Sequence[Track],
        ended_ids: Sequence[int],
        ended_s: float,
        state_key: str,
        state_blob: bytes,
        history: Sequence[bool] | None = None,
    ) -> int: ...
    def count(self, table: str = "observations") -> int: ...
    def close(self) -> None: ...
    def __enter__(self) -> Store: ...
    def __exit__(
        self, exc_type: type[BaseException] | None, exc: BaseException | None, tb: TracebackType | None
    ) -> None: ...


def split_box(bbox: Box) -> list[Box]:
    """One box, or two when it crosses the antimeridian; checks the numbers."""
    min_lat, min_lon, max_lat, max_lon = (float(v) for v in bbox)
    if not all(math.isfinite(v) for v in (min_lat, min_lon, max_lat, max_lon)):
        raise ValueError(f"bbox {bbox}: needs four finite numbers (min_lat, min_lon, max_lat, max_lon)")
    if not (-90.0 <= min_lat <= max_lat <= 90.0):
        raise ValueError(f"bbox {bbox}: latitudes must satisfy -90 <= min_lat <= max_lat <= 90")
    if not (-180.0 <= min_lon <= 180.0 and -180.0 <= max_lon <= 180.0):
        raise ValueError(f"bbox {bbox}: longitudes must lie in [-180, 180]")
    if min_lon <= max_lon:
        return [(min_lat, min_lon, max_lat, max_lon)]
    return [(min_lat, min_lon, max_lat, 180.0), (min_lat, -180.0, max_lat, max_lon)]


class ObservationWriter(Protocol):
    def write_observations(self, observations: Sequence[Observation]) -> int: ...
    def write_quarantine(self, records: Sequence[QuarantineRecord]) -> int: ...


class StoreSink:
    """A reader Sink that writes to a store in batches (call :meth:`flush` at the end).

    Messages are only counted (``messages``); observations and quarantine records are buffered
    and written every ``batch_size`` items. ``written_observations`` counts committed ones only.
    """

    def __init__(self, store: ObservationWriter, batch_size: int = 5000) -> None:
        self.store = store
        self.batch_size = batch_size
        self._obs: list[Observation] = []
        self._quarantine: list[QuarantineRecord] = []
        self.written_observations = 0
        self.written_quarantine = 0
        self.messages: dict[str, int] = {}

    def observation(self, obs: Observation) -> None:
        self._obs.append(obs)
        if len(self._obs) >= self.batch_size:
            self.flush()

    def message(self, kind: str) -> None:
        self.messages[kind] = self.messages.get(kind, 0) + 1

    def quarantine(self, record: QuarantineRecord) -> None:
        self._quarantine.append(record)
        if len(self._quarantine) >= self.batch_size:
            self.flush()

    def flush(self) -> None:
        if self._obs:
            self.written_observations += self.store.write_observations(self._obs)
            self._obs = []
        if self._quarantine:
            self.written_quarantine += self.store.write_quarantine(self._quarantine)
            self._quarantine = []
