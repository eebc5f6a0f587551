"""Measurement models: from observations to (z, R) and, per (track, detection) pair, to the
predicted measurement h(x) and its Jacobian H.

Observations are grouped into families that share one measurement function:

``pos3``      3-D point (geodetic, local plots): z = position in the frame, H = [I 0].
``pos3vel``   3-D point with velocity (ADS-B, partner tracks): z = [position, velocity], H = I.
``ground2``   2-D ground position without altitude (sightings): z = the east/north coordinates
              at the detection's ground point, H = [E; N] (linear; altitude unobserved).
``polar``     radar plot (range, azimuth, elevation) from a site: nonlinear, EKF linearisation
              at each pair's predicted position.
``polar_h``   2-D radar plot with a measured height (range, azimuth, altitude): nonlinear, EKF.

Each family also gives every detection an approximate frame position and an uncertainty radius,
used by the kd-tree pre-gate.
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass, field

import numpy as np
import numpy.typing as npt

from stratowatch import geo
from stratowatch.model import MeasurementKind, ObservationBatch, Sensor
from stratowatch.tracking.frames import Frame, LocalFrame

FloatArray = npt.NDArray[np.float64]
IntArray = npt.NDArray[np.int64]

FAMILIES = ("pos3", "pos3vel", "ground2", "polar", "polar_h")
DIM = {"pos3": 3, "pos3vel": 6, "ground2": 2, "polar": 3, "polar_h": 3}
#: Which innovation components are angles (wrapped to [-pi, pi)).
ANGLES = {"polar": (1,), "polar_h": (1,)}


class MeasurementError(ValueError):
    """An observation the tracker cannot use (unknown sensor site, wrong frame)."""


@dataclass(slots=True)
class MeasurementSet:
    """Detections of one family in one sub-scan, ready for gating and update."""

    family: str
    det: IntArray  # indices into the sub-scan batch
    time_s: FloatArray
    z: FloatArray  # (k, m)
    R: FloatArray  # (k, m, m)
    gate_point: FloatArray  # (k, 3) approximate frame position (ground point for ground2)
    gate_radius: FloatArray  # (k,) metres, ~3 sigma of the point's uncertainty
    identity: IntArray
    aux: dict[str, FloatArray] = field(default_factory=dict)
    #: Frame-Cartesian position and covariance of each detection (to start new tracks).
    init_pos: FloatArray | None = None
    init_cov: FloatArray | None = None

    def __len__(self) -> int:
        return int(self.det.shape[0])

    @property
    def dim(self) -> int:
        return DIM[self.family]


def build_sets(
    batch: ObservationBatch,
    frame: Frame,
    sensors: Mapping[str, Sensor],
    alt_prior_m: tuple[float, float],
) -> list[MeasurementSet]:
    """Split a sub-scan batch into measurement sets (one per family present)."""
    out: list[MeasurementSet] = []
    kind = batch.kind
    has_vel = np.all(np.isfinite(batch.velocity_enu_mps), axis=1)
    point = (kind == MeasurementKind.GEODETIC) | (kind == MeasurementKind.LOCAL_XYZ)
    for fam, sel in (
        ("pos3", point & ~has_vel),
        ("pos3vel", point & has_vel),
        ("ground2", kind == MeasurementKind.GROUND_2D),
        ("polar", kind == MeasurementKind.POLAR),
        ("polar_h", kind == MeasurementKind.POLAR_HEIGHT),
    ):
        idx = np.flatnonzero(sel)
        if idx.size:
            out.append(_BUILDERS[fam](batch, idx, frame, sensors, alt_prior_m))
    return out


def _point_positions(batch: ObservationBatch, idx: IntArray, frame: Frame) -> tuple[FloatArray, FloatArray]:
    v = batch.value[idx]
    local = batch.kind[idx] == MeasurementKind.LOCAL_XYZ
    pos = np.empty((idx.size, 3))
    if np.any(local):
        if not isinstance(frame, LocalFrame):
            raise MeasurementError("LOCAL_XYZ observations need a tracker with a local frame")
        pos[local] = v[local]
    geo_sel = ~local
    if np.any(geo_sel):
        pos[geo_sel] = frame.from_geodetic(v[geo_sel, 0], v[geo_sel, 1], v[geo_sel, 2])
    basis = frame.enu_basis(pos)
    sh, sv = batch.sigma[idx, 0], batch.sigma[idx, 1]
    var = np.stack([sh * sh, sh * sh, sv * sv], axis=1)
    cov = np.einsum("kji,kj,kjl->kil", basis, var, basis)
    return pos, cov


def _pos3(
    batch: ObservationBatch,
    idx: IntArray,
    frame: Frame,
    sensors: Mapping[str, Sensor],
    alt_prior: tuple[float, float],
) -> MeasurementSet:
    pos, cov = _point_positions(batch, idx, frame)
    return MeasurementSet(
        "pos3",
        idx,
        batch.time_s[idx],
        pos,
        cov,
        pos,
        _radius(cov),
        batch.identity[idx],
        init_pos=pos,
        init_cov=cov,
    )


def _pos3vel(
    batch: ObservationBatch,
    idx: IntArray,
    frame: Frame,
    sensors: Mapping[str, Sensor],
    alt_prior: tuple[float, float],
) -> MeasurementSet:
    pos, cov = _point_positions(batch, idx, frame)
    basis = frame.enu_basis(pos)
    vel = np.einsum("kji,kj->ki", basis, batch.velocity_enu_mps[idx])
    sig_v = batch.velocity_sigma_mps[idx]
    sig_v = np.where(np.isfinite(sig_v) & (sig_v > 0), sig_v, 5.0)
    k = idx.size
    z = np.concatenate([pos, vel], axis=1)
    R = np.zeros((k, 6, 6))
    R[:, :3, :3] = cov
    R[:, 3:, 3:] = np.eye(3) * (sig_v * sig_v)[:, None, None]
    return MeasurementSet(
        "pos3vel",
        idx,
        batch.time_s[idx],
        z,
        R,
        pos,
        _radius(cov),
        batch.identity[idx],
        init_pos=pos,
        init_cov=cov,
    )


def _ground2(
    batch: ObservationBatch,
    idx: IntArray,
    frame: Frame,
    sensors: Mapping[str, Sensor],
    alt_prior: tuple[float, float],
) -> MeasurementSet:
    v = batch.value[idx]
    ground = frame.from_geodetic(v[:, 0], v[:, 1], np.zeros(idx.size))
    basis = frame.enu_basis(ground)
    b2 = basis[:, :2, :]
    z = np.einsum("kij,kj->ki", b2, ground)
    sh = batch.sigma[idx, 0]
    R = np.eye(2) * (sh * sh)[:, None, None]
    # New tracks from a sighting: altitude from the prior, large vertical uncertainty.
    init_pos = frame.from_geodetic(v[:, 0], v[:, 1], np.full(idx.size, alt_prior[0]))
    var = np.stack([sh * sh, sh * sh, np.full(idx.size, alt_prior[1] ** 2)], axis=1)
    init_basis = frame.enu_basis(init_pos)
    init_cov = np.einsum("kji,kj,kjl->kil", init_basis, var, init_basis)
    return MeasurementSet(
        "ground2",
        idx,
        batch.time_s[idx],
        z,
        R,
        ground,
        np.sqrt(_GATE3) * sh,
        batch.identity[idx],
        aux={"b2": b2},
        init_pos=init_pos,
        init_cov=init_cov,
    )


def _sites(batch: ObservationBatch, idx: IntArray, sensors: Mapping[str, Sensor]) -> FloatArray:
    """(k, 3) site lat, lon, alt of each detection's sensor."""
    table = np.full((len(batch.sensor_ids), 3), np.nan)
    for i, sid in enumerate(batch.sensor_ids):  # one row per sensor, not per detection
        s = sensors.get(sid)
        if s is not None and s.has_site:
            table[i] = (s.lat_deg, s.lon_deg, s.alt_m)
    sites = table[batch.sensor_index[idx]]
    if np.any(~np.isfinite(sites[:, 0])):
        missing = sorted({batch.sensor_ids[i] for i in batch.sensor_index[idx][~np.isfinite(sites[:, 0])]})
        raise MeasurementError(f"radar plots from sensors without a known site: {', '.join(missing)}")
    return sites


def _polar_common(
    batch: ObservationBatch,
    idx: IntArray,
    frame: Frame,
    sensors: Mapping[str, Sensor],
    elev_deg: FloatArray,
) -> tuple[FloatArray, FloatArray, FloatArray, FloatArray, FloatArray]:
    sites = _sites(batch, idx, sensors)
    site_pos, site_basis = frame.site(sites[:, 0], sites[:, 1], sites[:, 2])
    v = batch.value[idx]
    polar = np.stack([v[:, 0], v[:, 1], elev_deg], axis=1)
    enu = geo.polar_to_enu(polar)
    pos = site_pos + np.einsum("ki,kij->kj", enu, site_basis)
    return sites, site_pos, site_basis, pos, polar


def _polar_cart_cov(
    polar: FloatArray,
    sig_r: FloatArray,
    sig_az: FloatArray,
    sig_el: FloatArray,
    site_basis: FloatArray,
) -> FloatArray:
    """Covariance of the converted Cartesian point (first-order), in frame coordinates."""
    r, az, el = polar[:, 0], np.radians(polar[:, 1]), np.radians(polar[:, 2])
    ca, sa, ce, se = np.cos(az), np.sin(az), np.cos(el), np.sin(el)
    j = np.zeros((r.size, 3, 3))  # d(e, n, u)/d(r, az, el)
    j[:, 0] = np.stack([ce * sa, r * ce * ca, -r * se * sa], axis=1)
    j[:, 1] = np.stack([ce * ca, -r * ce * sa, -r * se * ca], axis=1)
    j[:, 2] = np.stack([se, np.zeros_like(r), r * ce], axis=1)
    var = np.stack([sig_r**2, sig_az**2, sig_el**2], axis=1)
    cov_enu = np.einsum("kij,kj,klj->kil", j, var, j)
    return np.asarray(np.einsum("kji,kjl,klm->kim", site_basis, cov_enu, site_basis))


def _polar(
    batch: ObservationBatch,
    idx: IntArray,
    frame: Frame,
    sensors: Mapping[str, Sensor],
    alt_prior: tuple[float, float],
) -> MeasurementSet:
    v = batch.value[idx]
    _, site_pos, site_basis, pos, polar = _polar_common(batch, idx, frame, sensors, v[:, 2])
    s = batch.sigma[idx]
    sig = np.stack([s[:, 0], np.radians(s[:, 1]), np.radians(s[:, 2])], axis=1)
    z = np.stack([v[:, 0], np.radians(v[:, 1]), np.radians(v[:, 2])], axis=1)
    R = np.eye(3) * (sig * sig)[:, None, :]
    cov = _polar_cart_cov(polar, sig[:, 0], sig[:, 1], sig[:, 2], site_basis)
    return MeasurementSet(
        "polar",
        idx,
        batch.time_s[idx],
        z,
        R,
        pos,
        _radius(cov),
        batch.identity[idx],
        aux={"site_pos": site_pos, "site_basis": site_basis},
        init_pos=pos,
        init_cov=cov,
    )


def _polar_h(
    batch: ObservationBatch,
    idx: IntArray,
    frame: Frame,
    sensors: Mapping[str, Sensor],
    alt_prior: tuple[float, float],
) -> MeasurementSet:
    v = batch.value[idx]
    sites = _sites(batch, idx, sensors)
    elev = geo.elevation_for_altitude(v[:, 0], v[:, 2], sites[:, 2])
    _, site_pos, site_basis, pos, polar = _polar_common(batch, idx, frame, sensors, elev)
    s = batch.sigma[idx]
    sig = np.stack([s[:, 0], np.radians(s[:, 1]), s[:, 2]], axis=1)
    z = np.stack([v[:, 0], np.radians(v[:, 1]), v[:, 2]], axis=1)
    R = np.eye(3) * (sig * sig)[:, None, :]
    sig_el = s[:, 2] / np.maximum(v[:, 0] * np.cos(np.radians(elev)), 1.0)
    cov = _polar_cart_cov(polar, sig[:, 0], sig[:, 1], sig_el, site_basis)
    return MeasurementSet(
        "polar_h",
        idx,
        batch.time_s[idx],
        z,
        R,
        pos,
        _radius(cov),
        batch.identity[idx],
        aux={"site_pos": site_pos, "site_basis": site_basis},
        init_pos=pos,
        init_cov=cov,
    )


_BUILDERS = {
    "pos3": _pos3,
    "pos3vel": _pos3vel,
    "ground2": _ground2,
    "polar": _polar,
    "polar_h": _polar_h,
}


def _radius(cov: FloatArray) -> FloatArray:
    """A radius that a gated pair's detection-side distance cannot exceed: sqrt(gate) times the
    square root of a bound on the largest eigenvalue (the largest absolute row sum)."""
    lam = np.abs(cov).sum(axis=-1).max(axis=-1)
    return np.asarray(np.sqrt(_GATE3) * np.sqrt(lam))


#: chi-square 3-dof quantile of the default gate probability (0.9995); the radius only has to
#: bound the gate, so the widest gate in use is what matters.
_GATE3 = 20.0


def predict_measurement(
    ms: MeasurementSet, det: IntArray, x: FloatArray, frame: Frame
) -> tuple[FloatArray, FloatArray]:
    """h(x) and Jacobian H (p, m, 6) for states ``x`` (p, 6) paired with set rows ``det`` (p,)."""
    p = x.shape[0]
    pos = x[:, :3]
    fam = ms.family
    if fam == "pos3":
        H = np.zeros((p, 3, 6))
        H[:, :, :3] = np.eye(3)
        return pos.copy(), H
    if fam == "pos3vel":
        return x.copy(), np.broadcast_to(np.eye(6), (p, 6, 6)).copy()
    if fam == "ground2":
        b2 = ms.aux["b2"][det]
        H = np.zeros((p, 2, 6))
        H[:, :, :3] = b2
        return np.einsum("kij,kj->ki", b2, pos), H
    site_pos = ms.aux["site_pos"][det]
    basis = ms.aux["site_basis"][det]
    enu = np.einsum("kij,kj->ki", basis, pos - site_pos)
    e, n, u = enu[:, 0], enu[:, 1], enu[:, 2]
    rho2 = np.maximum(e * e + n * n, 1e-6)
    rho = np.sqrt(rho2)
    r = np.sqrt(rho2 + u * u)
    az = np.arctan2(e, n) % (2.0 * np.pi)
    d_r = enu / r[:, None]
    d_az = np.stack([n / rho2, -e / rho2, np.zeros(p)], axis=1)
    if fam == "polar":
        el = np.arctan2(u, rho)
        d_el = np.stack([-e * u / (r * r * rho), -n * u / (r * r * rho), rho / (r * r)], axis=1)
        zhat = np.stack([r, az, el], axis=1)
        j_enu = np.stack([d_r, d_az, d_el], axis=1)
        H = np.zeros((p, 3, 6))
        H[:, :, :3] = j_enu @ basis
        return zhat, H
    # polar_h: third component is the target's altitude; its gradient is the local up vector.
    alt = frame.altitude(pos)
    up = frame.enu_basis(pos)[:, 2, :]
    zhat = np.stack([r, az, alt], axis=1)
    H = np.zeros((p, 3, 6))
    H[:, :2, :3] = np.stack([d_r, d_az], axis=1) @ basis
    H[:, 2, :3] = up
    return zhat, H


def innovation(ms: MeasurementSet, det: IntArray, zhat: FloatArray) -> FloatArray:
    nu = ms.z[det] - zhat
    for c in ANGLES.get(ms.family, ()):
        nu[:, c] = (nu[:, c] + np.pi) % (2.0 * np.pi) - np.pi
    return np.asarray(nu)
