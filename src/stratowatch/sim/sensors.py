"""Simulated sensors: primary 3-D radars of two partners, an ADS-B network and APRS telemetry.

Each source turns the truth grid into reports with whole-array operations: one radar computes
the range, azimuth and elevation of all targets at all of its scan times at once, draws
detections (its own probability of detection for aircraft and for balloons, whose radar cross
section is small), adds Gaussian noise with its stated sigmas, and adds Poisson clutter spread
over its coverage. Only the final step, turning rows into :class:`~stratowatch.model.Observation`
objects for the tracker's API, is per report.

Every report of one scan carries the scan's time (a rotation's plots are stamped with the scan
time, as many radar data distributions do); the tracker receives each scan as one batch.

The radar sites are plausible, public-knowledge places (airfields and cities of Montana, Alberta
and Saskatchewan); their ranges, periods and accuracies are typical of long-range (ARSR-class)
and terminal (ASR-class) radars, not the figures of any real installation.
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np
import numpy.typing as npt

from stratowatch.geo import ecef_to_polar, geodetic_to_ecef
from stratowatch.model import MeasurementKind, ObjectClass, Observation, Sensor, SourceRef
from stratowatch.sim.targets import TruthGrid, ellipsoid_radii

FloatArray = npt.NDArray[np.float64]
IntArray = npt.NDArray[np.int64]

#: Who may see the radar plots (both partners share plots; each keeps its sites national).
PARTNERS: frozenset[str] = frozenset({"CAN", "USA"})


@dataclass(frozen=True, slots=True)
class RadarSpec:
    """A primary 3-D surveillance radar of one partner."""

    sensor_id: str
    name: str
    owner: str
    lat_deg: float
    lon_deg: float
    alt_m: float
    max_range_m: float
    scan_period_s: float
    pd_aircraft: float
    pd_balloon: float
    sigma_range_m: float
    sigma_azimuth_deg: float
    sigma_elevation_deg: float
    clutter_per_scan: float
    min_range_m: float = 5000.0
    min_elevation_deg: float = -0.3
    max_elevation_deg: float = 40.0

    def sensor(self, report_every: int = 1) -> Sensor:
        return Sensor(
            sensor_id=self.sensor_id,
            owner=self.owner,
            kind="radar-3d",
            lat_deg=self.lat_deg,
            lon_deg=self.lon_deg,
            alt_m=self.alt_m,
            max_range_m=self.max_range_m,
            max_elevation_deg=self.max_elevation_deg,
            p_detect=min(self.pd_aircraft, self.pd_balloon),
            sigma_range_m=self.sigma_range_m,
            sigma_azimuth_deg=self.sigma_azimuth_deg,
            sigma_elevation_deg=self.sigma_elevation_deg,
            update_period_s=self.scan_period_s * report_every,
            releasable_to=PARTNERS,  # both partners share the plots...
            site_releasable_to=frozenset({self.owner}),  # ...each keeps its radar sites national
            name=self.name,
        )


#: Default radars: three Canadian, three US, with different coverage and quality.
DEFAULT_RADARS: tuple[RadarSpec, ...] = (
    RadarSpec(
        "can-lethbridge",
        "Lethbridge AB",
        "CAN",
        49.630,
        -112.800,
        930.0,
        300e3,
        11.0,
        0.95,
        0.75,
        60.0,
        0.15,
        0.25,
        4.0,
    ),
    RadarSpec(
        "can-calgary",
        "Calgary AB",
        "CAN",
        51.114,
        -114.020,
        1090.0,
        200e3,
        10.0,
        0.97,
        0.70,
        40.0,
        0.12,
        0.20,
        3.0,
    ),
    RadarSpec(
        "can-regina",
        "Regina SK",
        "CAN",
        50.432,
        -104.666,
        580.0,
        330e3,
        12.0,
        0.93,
        0.70,
        80.0,
        0.18,
        0.30,
        5.0,
    ),
    RadarSpec(
        "usa-great-falls",
        "Great Falls MT",
        "USA",
        47.505,
        -111.183,
        1060.0,
        370e3,
        12.0,
        0.95,
        0.80,
        70.0,
        0.14,
        0.22,
        6.0,
    ),
    RadarSpec(
        "usa-havre",
        "Havre MT",
        "USA",
        48.543,
        -109.763,
        790.0,
        280e3,
        10.0,
        0.92,
        0.65,
        60.0,
        0.16,
        0.28,
        4.0,
    ),
    RadarSpec(
        "usa-glasgow",
        "Glasgow MT",
        "USA",
        48.421,
        -106.528,
        700.0,
        340e3,
        12.0,
        0.94,
        0.70,
        75.0,
        0.17,
        0.30,
        5.0,
    ),
)

ADSB_SENSOR = Sensor(
    sensor_id="adsb-net",
    owner="OPEN",
    kind="adsb",
    sigma_h_m=25.0,
    sigma_v_m=15.0,
    update_period_s=10.0,
    name="Community ADS-B network",
)
APRS_SENSOR = Sensor(
    sensor_id="aprs-is",
    owner="OPEN",
    kind="aprs",
    sigma_h_m=10.0,
    sigma_v_m=20.0,
    update_period_s=120.0,
    name="APRS-IS igates",
)


@dataclass(slots=True)
class ReportSet:
    """Reports of one source as rows: ``time_s``, ``target`` (truth column, -1 clutter),
    ``value``/``sigma`` (n, 3) and the per-row velocity (NaN where absent)."""

    sensor_id: str
    kind: MeasurementKind
    time_s: FloatArray
    target: IntArray
    value: FloatArray
    sigma: FloatArray
    velocity_enu_mps: FloatArray
    velocity_sigma_mps: float = float("nan")

    def __len__(self) -> int:
        return int(self.time_s.size)


def scan_times(start_s: float, end_s: float, period_s: float, phase_s: float) -> FloatArray:
    """Times of scans from ``start_s + phase_s`` every ``period_s`` up to ``end_s``."""
    first = start_s + phase_s
    n = int(np.floor((end_s - first) / period_s + 1e-9)) + 1 if end_s >= first else 0
    return first + period_s * np.arange(max(n, 0), dtype=np.float64)


def simulate_radar(
    rng: np.random.Generator, spec: RadarSpec, truth: TruthGrid, times_s: FloatArray
) -> ReportSet:
    """Plots of one radar at its scan times: detections of all targets plus clutter."""
    lat, lon, alt, _vel, alive = truth.sample(times_s)
    n_s, n_t = alive.shape
    polar = ecef_to_polar(geodetic_to_ecef(lat, lon, alt), spec.lat_deg, spec.lon_deg, spec.alt_m)
    rng_m, el = polar[..., 0], polar[..., 2]
    visible = (
        alive
        & (rng_m <= spec.max_range_m)
        & (rng_m >= spec.min_range_m)
        & (el >= spec.min_elevation_deg)
        & (el <= spec.max_elevation_deg)
    )
    pd = np.where(truth.object_class == ObjectClass.BALLOON, spec.pd_balloon, spec.pd_aircraft)
    detected = visible & (rng.random((n_s, n_t)) < pd[None, :])
    sig = np.array([spec.sigma_range_m, spec.sigma_azimuth_deg, spec.sigma_elevation_deg])
    noisy = polar + rng.normal(0.0, 1.0, polar.shape) * sig
    scan_idx, tgt = np.nonzero(detected)
    det = noisy[scan_idx, tgt]

    n_clutter = rng.poisson(spec.clutter_per_scan, n_s)
    c_scan = np.repeat(np.arange(n_s), n_clutter)
    m = c_scan.size
    clutter = np.column_stack(
        [
            rng.uniform(spec.min_range_m, spec.max_range_m, m),
            rng.uniform(0.0, 360.0, m),
            rng.uniform(0.0, 8.0, m),
        ]
    )
    all_scan = np.concatenate([scan_idx, c_scan])
    order = np.argsort(all_scan, kind="stable")
    value = np.vstack([det, clutter])[order]
    value[:, 1] %= 360.0
    return ReportSet(
        sensor_id=spec.sensor_id,
        kind=MeasurementKind.POLAR,
        time_s=times_s[all_scan[order]],
        target=np.concatenate([tgt, np.full(m, -1)])[order].astype(np.int64),
        value=value,
        sigma=np.broadcast_to(sig, value.shape).copy(),
        velocity_enu_mps=np.full(value.shape, np.nan),
    )


def simulate_geodetic_reports(
    rng: np.random.Generator,
    sensor: Sensor,
    truth: TruthGrid,
    targets: IntArray,
    times_s: FloatArray,
    probability: float,
    velocity_sigma_mps: float | None,
) -> ReportSet:
    """GNSS-based position reports (ADS-B, APRS) of the given truth columns at the given times."""
    lat, lon, alt, vel, alive = truth.sample(times_s)
    lat, lon, alt, vel, alive = (
        lat[:, targets],
        lon[:, targets],
        alt[:, targets],
        vel[:, targets],
        alive[:, targets],
    )
    received = alive & (rng.random(alive.shape) < probability)
    # Horizontal noise in metres, turned into degrees with the local radii.
    noise = rng.normal(0.0, 1.0, (*alive.shape, 3)) * np.array(
        [sensor.sigma_h_m, sensor.sigma_h_m, sensor.sigma_v_m]
    )
    meridian_m, normal_m = ellipsoid_radii(lat)
    lat_n = lat + np.degrees(noise[..., 1] / (meridian_m + alt))
    lon_n = lon + np.degrees(noise[..., 0] / ((normal_m + alt) * np.cos(np.radians(lat))))
    alt_n = alt + noise[..., 2]
    si, ti = np.nonzero(received)
    value = np.column_stack([lat_n[si, ti], lon_n[si, ti], alt_n[si, ti]])
    if velocity_sigma_mps is not None:
        v = vel[si, ti] + rng.normal(0.0, velocity_sigma_mps, (si.size, 3))
    else:
        v = np.full((si.size, 3), np.nan)
    return ReportSet(
        sensor_id=sensor.sensor_id,
        kind=MeasurementKind.GEODETIC,
        time_s=times_s[si],
        target=targets[ti].astype(np.int64),
        value=value,
        sigma=np.broadcast_to(np.array([sensor.sigma_h_m, sensor.sigma_v_m, np.nan]), (si.size, 3)).copy(),
        velocity_enu_mps=v,
        velocity_sigma_mps=float("nan") if velocity_sigma_mps is None else velocity_sigma_mps,
    )


def to_observations(
    reports: ReportSet,
    owner: str,
    releasable_to: frozenset[str],
    identities: list[str | None],
    callsigns: list[str | None],
    scan_number: IntArray | None = None,
) -> list[Observation]:
    """Rows -> Observation objects (the tracker's public input), in row order."""
    kind = reports.kind
    n_sigma = 3 if kind == MeasurementKind.POLAR else 2
    values = reports.value.tolist()
    sigmas = reports.sigma[:, :n_sigma].tolist()
    times = reports.time_s.tolist()
    targets = reports.target.tolist()
    has_vel = bool(np.isfinite(reports.velocity_enu_mps).all()) and len(reports) > 0
    vels = reports.velocity_enu_mps.tolist() if has_vel else [None] * len(reports)
    scans = scan_number.tolist() if scan_number is not None else list(range(len(reports)))
    source = f"sim:{reports.sensor_id}"
    out: list[Observation] = []
    for t, val, sig, tgt, vel, k in zip(times, values, sigmas, targets, vels, scans, strict=True):
        out.append(
            Observation(
                time_s=t,
                sensor_id=reports.sensor_id,
                kind=kind,
                value=tuple(val),
                sigma=tuple(sig),
                velocity_enu_mps=None if vel is None else (vel[0], vel[1], vel[2]),
                velocity_sigma_mps=reports.velocity_sigma_mps,
                identity=identities[tgt] if tgt >= 0 else None,
                callsign=callsigns[tgt] if tgt >= 0 else None,
                releasable_to=releasable_to,
                originator=owner,
                source=SourceRef(source, int(k)),
            )
        )
    return out
