"""The shared data model: sensors, observations and tracks.

Frozen dataclasses are the public, typed face of the model (what ingest produces one by one and
what the API returns). The hot paths never loop over them: they work on the columnar forms
(:class:`ObservationBatch`, :class:`TrackTable`), which hold one numpy array per field.

Times are POSIX seconds in UTC (``time_s``); positions are WGS-84 geodetic degrees and metres
unless a name says otherwise (``*_ecef_m`` for Earth-centred Earth-fixed, ``x_m``/``y_m``/``z_m``
for a local Cartesian frame).
"""

from __future__ import annotations

import math
from collections.abc import Iterable, Mapping, Sequence
from dataclasses import dataclass, field
from enum import IntEnum

import numpy as np
import numpy.typing as npt

FloatArray = npt.NDArray[np.float64]
IntArray = npt.NDArray[np.int64]

#: Releasability label meaning "anyone may see this".
PUBLIC: frozenset[str] = frozenset({"PUBLIC"})


class MeasurementKind(IntEnum):
    """What an observation measured; fixes the meaning of ``value`` and ``sigma``.

    ======================  ====================================  ==================================
    kind                    value                                 sigma (1-sigma)
    ======================  ====================================  ==================================
    GEODETIC                (lat_deg, lon_deg, alt_m)             (horizontal_m per axis, vertical_m)
    GROUND_2D               (lat_deg, lon_deg) — no altitude      (horizontal_m per axis,)
    POLAR                   (range_m, azimuth_deg, elevation_deg) (range_m, azimuth_deg, elevation_deg)
                            from the sensor's site
    POLAR_HEIGHT            (range_m, azimuth_deg, alt_m): a 2-D  (range_m, azimuth_deg, alt_m)
                            radar plot with a Mode C / measured
                            height instead of an elevation
    LOCAL_XYZ               (x_m, y_m, z_m) in the tracker's      (horizontal_m per axis, vertical_m)
                            local flat frame (benchmark plots)
    ======================  ====================================  ==================================

    Any kind may carry a velocity (``velocity_enu_mps``, east/north/up) with
    ``velocity_sigma_mps`` — ADS-B airborne velocity, partner system tracks.
    """

    GEODETIC = 0
    GROUND_2D = 1
    POLAR = 2
    POLAR_HEIGHT = 3
    LOCAL_XYZ = 4


@dataclass(frozen=True, slots=True)
class SourceRef:
    """Where an observation came from: a file and line, or a stream and offset."""

    source: str
    position: int = 0

    def __str__(self) -> str:
        return f"{self.source}:{self.position}"


@dataclass(frozen=True, slots=True)
class Sensor:
    """A sensor of a partner: where it is, how accurate it is, and who may see its data
    (``releasable_to``: the sensor and its observations) and its site (``site_releasable_to``).

    ``max_range_m`` and ``max_elevation_deg`` (radars: the cone of silence overhead) let the
    tracker count a missed detection only where the sensor could have seen the track;
    ``p_detect`` says how much a miss there weighs. Accuracies are used when an observation does
    not state its own.
    """

    sensor_id: str
    owner: str = "LOCAL"
    kind: str = "generic"
    lat_deg: float = float("nan")
    lon_deg: float = float("nan")
    alt_m: float = 0.0
    max_range_m: float = float("inf")
    max_elevation_deg: float = 90.0
    p_detect: float = 0.9
    sigma_range_m: float = 50.0
    sigma_azimuth_deg: float = 0.1
    sigma_elevation_deg: float = 0.2
    sigma_h_m: float = 100.0
    sigma_v_m: float = 100.0
    update_period_s: float = 10.0
    releasable_to: frozenset[str] = PUBLIC
    name: str = ""
    #: Who may see where the sensor stands (None: as ``releasable_to``): a partner may share a
    #: radar's plots and keep its site national.
    site_releasable_to: frozenset[str] | None = None

    @property
    def has_site(self) -> bool:
        return bool(np.isfinite(self.lat_deg) and np.isfinite(self.lon_deg))


@dataclass(frozen=True, slots=True)
class Observation:
    """One report from one sensor at one time. See :class:`MeasurementKind` for ``value``."""

    time_s: float
    sensor_id: str
    kind: MeasurementKind
    value: tuple[float, ...]
    sigma: tuple[float, ...]
    velocity_enu_mps: tuple[float, float, float] | None = None
    velocity_sigma_mps: float = float("nan")
    identity: str | None = None
    callsign: str | None = None
    category: str | None = None
    releasable_to: frozenset[str] = PUBLIC
    originator: str = ""
    source: SourceRef | None = None

    def __post_init__(self) -> None:
        n = _VALUE_LEN[self.kind]
        if len(self.value) != n:
            raise ValueError(f"{self.kind.name} observation needs {n} values, got {self.value}")
        if not all(math.isfinite(v) for v in self.value):
            raise ValueError(f"observation value must be finite, got {self.value}")
        if any(not (s > 0 and math.isfinite(s)) for s in self.sigma):
            raise ValueError(f"observation sigma must be positive and finite, got {self.sigma}")


_VALUE_LEN = {
    MeasurementKind.GEODETIC: 3,
    MeasurementKind.GROUND_2D: 2,
    MeasurementKind.POLAR: 3,
    MeasurementKind.POLAR_HEIGHT: 3,
    MeasurementKind.LOCAL_XYZ: 3,
}


class IdentityCodes:
    """Interns identity strings (``"icao:406B90"``) as non-negative integers; -1 is "none".

    Integer codes let the tracker bind identity-bearing reports to tracks with array operations.
    """

    def __init__(self) -> None:
        self._codes: dict[str, int] = {}
        self._names: list[str] = []

    def code(self, identity: str | None) -> int:
        if not identity:
            return -1
        c = self._codes.get(identity)
        if c is None:
            c = len(self._names)
            self._codes[identity] = c
            self._names.append(identity)
        return c

    def name(self, code: int) -> str | None:
        return self._names[code] if code >= 0 else None

    def codes(self, identities: Iterable[str | None]) -> IntArray:
        return np.fromiter((self.code(i) for i in identities), dtype=np.int64)


@dataclass(slots=True)
class ObservationBatch:
    """Columnar observations: one array per field, all of length ``n``.

    ``value`` and ``sigma`` are (n, 3), padded with NaN for kinds with fewer components;
    ``velocity_enu_mps`` is (n, 3) NaN where absent. ``sensor_index`` points into ``sensor_ids``;
    ``identity`` holds :class:`IdentityCodes` codes (-1 for none). ``obs_index`` maps each row back
    to the caller's list (or file row) so results can cite their source. ``category`` holds ADS-B
    emitter categories per row, or is empty when no row has one.
    """

    time_s: FloatArray
    kind: npt.NDArray[np.int8]
    value: FloatArray
    sigma: FloatArray
    sensor_index: IntArray
    sensor_ids: list[str]
    velocity_enu_mps: FloatArray
    velocity_sigma_mps: FloatArray
    identity: IntArray
    obs_index: IntArray
    category: list[str | None] = field(default_factory=list)

    def __len__(self) -> int:
        return int(self.time_s.shape[0])

    @classmethod
    def empty(cls) -> ObservationBatch:
        return cls.from_arrays(np.empty(0), np.empty(0, np.int8), np.empty((0, 3)), np.empty((0, 3)))

    @classmethod
    def from_arrays(
        cls,
        time_s: npt.ArrayLike,
        kind: npt.ArrayLike,
        value: npt.ArrayLike,
        sigma: npt.ArrayLike,
        *,
        sensor_index: npt.ArrayLike | None = None,
        sensor_ids: Sequence[str] = ("default",),
        velocity_enu_mps: npt.ArrayLike | None = None,
        velocity_sigma_mps: npt.ArrayLike | None = None,
        identity: npt.ArrayLike | None = None,
        obs_index: npt.ArrayLike | None = None,
    ) -> ObservationBatch:
        t = np.asarray(time_s, dtype=np.float64).reshape(-1)
        n = t.shape[0]
        kinds = np.broadcast_to(np.asarray(kind, dtype=np.int8), (n,)).copy()
        val = np.full((n, 3), np.nan)
        sig = np.full((n, 3), np.nan)
        if n:
            v = np.asarray(value, dtype=np.float64).reshape(n, -1)
            val[:, : v.shape[1]] = v
            s = np.asarray(sigma, dtype=np.float64).reshape(n, -1)
            sig[:, : s.shape[1]] = s
        return cls(
            time_s=t,
            kind=kinds,
            value=val,
            sigma=sig,
            sensor_index=_int_col(sensor_index, n, 0),
            sensor_ids=list(sensor_ids),
            velocity_enu_mps=(
                np.full((n, 3), np.nan)
                if velocity_enu_mps is None
                else np.asarray(velocity_enu_mps, dtype=np.float64).reshape(n, 3)
            ),
            velocity_sigma_mps=(
                np.full(n, np.nan)
                if velocity_sigma_mps is None
                else np.asarray(velocity_sigma_mps, dtype=np.float64).reshape(n)
            ),
            identity=_int_col(identity, n, -1),
            obs_index=_int_col(obs_index, n, None),
            category=[],
        )

    @classmethod
    def from_observations(
        cls, observations: Sequence[Observation], identities: IdentityCodes
    ) -> ObservationBatch:
        n = len(observations)
        if n == 0:
            return cls.empty()
        sensor_ids = sorted({o.sensor_id for o in observations})
        index = {s: i for i, s in enumerate(sensor_ids)}
        val = np.full((n, 3), np.nan)
        sig = np.full((n, 3), np.nan)
        vel = np.full((n, 3), np.nan)
        for i, o in enumerate(observations):  # edge conversion, once per observation
            val[i, : len(o.value)] = o.value
            sig[i, : len(o.sigma)] = o.sigma
            if o.velocity_enu_mps is not None:
                vel[i] = o.velocity_enu_mps
        batch = cls.from_arrays(
            [o.time_s for o in observations],
            [int(o.kind) for o in observations],
            val,
            sig,
            sensor_index=[index[o.sensor_id] for o in observations],
            sensor_ids=sensor_ids,
            velocity_enu_mps=vel,
            velocity_sigma_mps=[o.velocity_sigma_mps for o in observations],
            identity=identities.codes(o.identity for o in observations),
        )
        cats = [o.category for o in observations]
        batch.category = cats if any(c is not None for c in cats) else []
        return batch

    def take(self, index: npt.ArrayLike) -> ObservationBatch:
        idx = np.asarray(index)
        if idx.dtype == bool:
            idx = np.flatnonzero(idx)
        return ObservationBatch(
            time_s=self.time_s[idx],
            kind=self.kind[idx],
            value=self.value[idx],
            sigma=self.sigma[idx],
            sensor_index=self.sensor_index[idx],
            sensor_ids=self.sensor_ids,
            velocity_enu_mps=self.velocity_enu_mps[idx],
            velocity_sigma_mps=self.velocity_sigma_mps[idx],
            identity=self.identity[idx],
            obs_index=self.obs_index[idx],
            category=np.asarray(self.category, dtype=object)[idx].tolist() if self.category else [],
        )


def _int_col(values: npt.ArrayLike | None, n: int, default: int | None) -> IntArray:
    if values is None:
        if default is None:
            return np.arange(n, dtype=np.int64)
        return np.full(n, default, dtype=np.int64)
    return np.broadcast_to(np.asarray(values, dtype=np.int64), (n,)).copy()


class TrackStatus(IntEnum):
    TENTATIVE = 0
    CONFIRMED = 1
    COASTING = 2
    ENDED = 3


class ObjectClass(IntEnum):
    UNKNOWN = 0
    BALLOON = 1
    AIRCRAFT = 2


@dataclass(frozen=True, slots=True)
class Classification:
    """What an object is, how sure we are, and why (human-readable reasons)."""

    label: ObjectClass
    probability: float
    probabilities: Mapping[str, float]
    reasons: tuple[str, ...]


@dataclass(frozen=True, slots=True)
class Track:
    """A snapshot of one track, for people and APIs (the tracker itself keeps a TrackTable)."""

    track_id: int
    time_s: float
    status: TrackStatus
    lat_deg: float
    lon_deg: float
    alt_m: float
    velocity_enu_mps: tuple[float, float, float]
    position_sigma_m: tuple[float, float, float]
    model_probabilities: Mapping[str, float]
    identities: tuple[str, ...]
    sensors: tuple[str, ...]
    first_time_s: float
    last_update_s: float
    n_updates: int
    classification: Classification | None = None
    #: The meet of the contributing sensors' labels (see :mod:`stratowatch.sharing.labels`).
    releasable_to: frozenset[str] = PUBLIC
    #: The picture the track belongs to: ``""`` the node's own, else the partner it was rebuilt for.
    audience: str = ""
    #: The partner whose node made the track.
    originator: str = ""
    #: 1-sigma velocity uncertainty east, north, up (m/s), where the tracker gave it (a track read
    #: back from the store has none). Not compared: it is a by-product of the state.
    velocity_sigma_mps: tuple[float, float, float] | None = field(default=None, compare=False)

    @property
    def speed_mps(self) -> float:
        e, n, _ = self.velocity_enu_mps
        return float(np.hypot(e, n))


# --------------------------------------------------------------------------- service-level model


@dataclass(frozen=True, slots=True)
class Geofence:
    """A place that matters: a circle around a site, a polygon, or a line (a border, an ADIZ edge).

    ``coordinates`` are (lat_deg, lon_deg) pairs: the centre for a circle, the ring for a polygon
    (first point not repeated), the vertices for a line. ``source`` says where the facts came from.
    """

    geofence_id: str
    name: str
    kind: str  # "circle" | "polygon" | "line"
    coordinates: tuple[tuple[float, float], ...]
    radius_m: float = 0.0
    min_alt_m: float = float("-inf")
    max_alt_m: float = float("inf")
    severity: str = "warning"  # "info" | "warning" | "critical"
    source: str = ""
    releasable_to: frozenset[str] = PUBLIC


@dataclass(frozen=True, slots=True)
class Alert:
    """One thing that needs attention. ``alert_id`` is a stable de-duplication key
    (e.g. ``"geofence_enter:42:mt-malmstrom"``); re-notification happens only on material change."""

    alert_id: str
    time_s: float
    rule: str  # geofence_enter|geofence_exit|predicted_entry|new_unidentified|track_lost|border_crossing
    severity: str
    message: str
    track_id: int | None = None
    geofence_id: str | None = None
    details: Mapping[str, object] = field(default_factory=dict)
    incident_id: str | None = None
    acknowledged_by: str | None = None
    acknowledged_s: float | None = None
    releasable_to: frozenset[str] = PUBLIC
    audience: str = ""  # the picture whose track raised it ("" the node's own)
    originator: str = ""  # the partner whose node raised it


@dataclass(frozen=True, slots=True)
class Incident:
    """A thread of alerts about one object or event, with its lifecycle and who did what."""

    incident_id: str
    opened_s: float
    status: str  # open | tracking | resolved
    title: str
    track_ids: tuple[int, ...] = ()
    alert_ids: tuple[str, ...] = ()
    history: tuple[tuple[float, str, str], ...] = ()  # (time_s, who, what)
    updated_s: float = 0.0
    releasable_to: frozenset[str] = PUBLIC
    audience: str = ""  # the picture whose tracks it follows ("" the node's own)
    originator: str = ""  # the partner whose node opened it
