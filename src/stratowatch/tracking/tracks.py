"""The tracker's columnar track table: one numpy array per field, one row per live track."""

from __future__ import annotations

from dataclasses import dataclass, field, fields

import numpy as np
import numpy.typing as npt

from stratowatch.tracking.frames import Frame

FloatArray = npt.NDArray[np.float64]
IntArray = npt.NDArray[np.int64]


@dataclass(slots=True)
class TrackArrays:
    """Live tracks. ``x``/``P``/``mu`` are per motion model; ``t_s`` is each track's own time
    (its last update): tracks are predicted on demand, never stepped in lock-step."""

    track_id: IntArray
    t_s: FloatArray
    x: FloatArray  # (n, M, 6)
    P: FloatArray  # (n, M, 6, 6)
    mu: FloatArray  # (n, M)
    status: npt.NDArray[np.int8]
    hits: IntArray
    misses_total: IntArray
    misses_run: IntArray
    miss_logp: FloatArray  # log probability of the current run of misses (0 after a hit)
    first_s: FloatArray
    identity: IntArray
    sensor_mask: npt.NDArray[np.uint64]
    n_updates: IntArray
    xc: FloatArray  # (n, 6) cached moment-matched state (see refresh)
    Pc: FloatArray  # (n, 6, 6)

    @classmethod
    def empty(cls, n_models: int) -> TrackArrays:
        return cls(
            track_id=np.empty(0, np.int64),
            t_s=np.empty(0),
            x=np.empty((0, n_models, 6)),
            P=np.empty((0, n_models, 6, 6)),
            mu=np.empty((0, n_models)),
            status=np.empty(0, np.int8),
            hits=np.empty(0, np.int64),
            misses_total=np.empty(0, np.int64),
            misses_run=np.empty(0, np.int64),
            miss_logp=np.empty(0),
            first_s=np.empty(0),
            identity=np.empty(0, np.int64),
            sensor_mask=np.empty(0, np.uint64),
            n_updates=np.empty(0, np.int64),
            xc=np.empty((0, 6)),
            Pc=np.empty((0, 6, 6)),
        )

    def __len__(self) -> int:
        return int(self.track_id.shape[0])

    def append(self, other: TrackArrays) -> None:
        for f in fields(self):
            setattr(self, f.name, np.concatenate([getattr(self, f.name), getattr(other, f.name)]))

    def keep(self, mask: npt.NDArray[np.bool_] | npt.NDArray[np.int64]) -> None:
        """Keep the rows of a boolean mask, or the rows at the given indices in their order."""
        for f in fields(self):
            setattr(self, f.name, getattr(self, f.name)[mask])

    def combined(self) -> tuple[FloatArray, FloatArray]:
        """Moment-matched state and covariance (n, 6), (n, 6, 6) at each track's own time."""
        return self.xc, self.Pc

    def refresh(self, rows: npt.ArrayLike | None = None) -> None:
        """Recompute the cached moment-matched state of the given rows (all by default)."""
        from stratowatch.tracking.imm import combine

        if rows is None:
            self.xc, self.Pc = combine(self.x, self.P, self.mu)
        else:
            r = np.asarray(rows)
            self.xc[r], self.Pc[r] = combine(self.x[r], self.P[r], self.mu[r])


@dataclass(frozen=True, slots=True)
class TrackTable:
    """What the tracker reports at a time: states predicted to ``time_s``, frame coordinates.

    The geodetic and east/north/up views (``lat_deg``, ``lon_deg``, ``alt_m``,
    ``velocity_enu_mps``, ``position_sigma_enu_m``) are computed on first use, so a caller that
    only needs frame coordinates (the benchmark CLI) does not pay for them.
    """

    time_s: float
    track_id: IntArray
    status: npt.NDArray[np.int8]
    x: FloatArray  # (n, 6) position and velocity in the tracker's frame
    P: FloatArray  # (n, 6, 6)
    mu: FloatArray  # (n, M) model probabilities
    last_update_s: FloatArray
    first_s: FloatArray
    identity: IntArray
    sensor_mask: npt.NDArray[np.uint64]
    n_updates: IntArray
    misses_run: IntArray
    frame: Frame
    _views: dict[str, FloatArray] = field(default_factory=dict, repr=False, compare=False)

    def __len__(self) -> int:
        return int(self.track_id.shape[0])

    def _geodetic(self) -> FloatArray:
        g = self._views.get("geodetic")
        if g is None:
            g = self.frame.to_geodetic(self.x[:, :3]) if len(self) else np.empty((0, 3))
            self._views["geodetic"] = g
        return g

    def _basis(self) -> FloatArray:
        b = self._views.get("basis")
        if b is None:
            b = self.frame.enu_basis(self.x[:, :3]) if len(self) else np.empty((0, 3, 3))
            self._views["basis"] = b
        return b

    @property
    def lat_deg(self) -> FloatArray:
        return np.asarray(self._geodetic()[:, 0])

    @property
    def lon_deg(self) -> FloatArray:
        return np.asarray(self._geodetic()[:, 1])

    @property
    def alt_m(self) -> FloatArray:
        return np.asarray(self._geodetic()[:, 2])

    @property
    def velocity_enu_mps(self) -> FloatArray:
        """(n, 3) east, north, up."""
        v = self._views.get("velocity")
        if v is None:  # cached: callers index it row by row (to_tracks)
            v = self._views["velocity"] = np.asarray(np.einsum("nij,nj->ni", self._basis(), self.x[:, 3:]))
        return v

    @property
    def position_sigma_enu_m(self) -> FloatArray:
        """(n, 3) one-sigma position uncertainty along east, north, up."""
        sig = self._views.get("sigma")
        if sig is None:
            b = self._basis()
            cov = np.einsum("nij,njk,nlk->nil", b, self.P[:, :3, :3], b)
            sig = self._views["sigma"] = np.sqrt(np.maximum(np.diagonal(cov, axis1=1, axis2=2), 0.0))
        return sig

    @property
    def velocity_sigma_enu_mps(self) -> FloatArray:
        """(n, 3) one-sigma velocity uncertainty along east, north, up."""
        sig = self._views.get("vsigma")
        if sig is None:
            b = self._basis()
            cov = np.einsum("nij,njk,nlk->nil", b, self.P[:, 3:, 3:], b)
            sig = self._views["vsigma"] = np.sqrt(np.maximum(np.diagonal(cov, axis1=1, axis2=2), 0.0))
        return sig
