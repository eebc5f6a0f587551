"""A seeded, geodetic surveillance episode: what the demo, the tests and the benchmarks track.

The default scene is fictional but plausible, after the first days of February 2023: over
southern Alberta and Saskatchewan and northern Montana,

* **balloon-1**, a large balloon with no transponder and no identity, is already aloft at
  18–20 km near Calgary when the episode starts and drifts south-east towards Great Falls;
* **balloon-2** appears later (half-way through the episode, at most two hours in) near the
  border west of Lethbridge. It is an amateur high-altitude balloon whose tracker beacons its GPS
  position over APRS every two minutes as ``aprs:N0CALL-11`` (N0CALL is the placeholder
  callsign), so it carries an identity — the radars see both balloons the same way;
* a few dozen airliners cross at FL300–FL390, about 85 % of them with ADS-B (``icao:A…``
  US-registered, ``icao:C0…`` to ``icao:C3…`` Canadian) reported by a community network,
  the others seen by the radars only;
* six primary 3-D radars, three Canadian (``CAN``) and three US (``USA``), each with its own
  range, scan period (10–12 s), detection probabilities (lower for balloons), accuracies and
  clutter rate (see :data:`~stratowatch.sim.sensors.DEFAULT_RADARS`).

Everything is drawn from one seed (independent streams per part, so adding aircraft does not
change the balloons' winds). :func:`generate_scenario` returns the sensor registry, the truth
and the reports grouped into time-ordered scans ``[(time_s, [Observation, ...]), ...]``.
"""

from __future__ import annotations

import logging
from dataclasses import dataclass, field, replace

import numpy as np
import numpy.typing as npt

from stratowatch.geo import ecef_to_polar, geodetic_to_ecef
from stratowatch.model import ObjectClass, Observation, Sensor
from stratowatch.sim.sensors import (
    ADSB_SENSOR,
    APRS_SENSOR,
    DEFAULT_RADARS,
    PARTNERS,
    RadarSpec,
    ReportSet,
    scan_times,
    simulate_geodetic_reports,
    simulate_radar,
    to_observations,
)
from stratowatch.sim.targets import BalloonSpec, Region, TruthGrid, build_truth

FloatArray = npt.NDArray[np.float64]
IntArray = npt.NDArray[np.int64]
BoolArray = npt.NDArray[np.bool_]

log = logging.getLogger(__name__)

#: 2023-02-01T18:00:00Z
DEFAULT_START_S = 1675274400.0
APRS_IDENTITY = "aprs:N0CALL-11"
_AIRLINES_CAN = ("ACA", "WJA", "JZA", "TSC", "WEN", "POE")
_AIRLINES_USA = ("DAL", "UAL", "AAL", "SWA", "ASA", "SKW", "FDX", "UPS")


@dataclass(frozen=True, slots=True)
class ScenarioConfig:
    """Parameters of an episode. ``radar_report_every`` > 1 keeps only every k-th rotation of
    each radar (a coarse picture for quick demos); ``adsb_period_s`` thins ADS-B likewise."""

    seed: int = 1
    duration_s: float = 3 * 3600.0
    start_time_s: float = DEFAULT_START_S
    n_aircraft: int = 30
    second_balloon_delay_s: float | None = None
    adsb_fraction: float = 0.85
    adsb_period_s: float = 10.0
    adsb_probability: float = 0.97
    aprs_period_s: float = 120.0
    aprs_probability: float = 0.85
    radar_report_every: int = 1
    clutter_scale: float = 1.0
    dt_s: float = 1.0
    max_grid_cells: int = 2_000_000
    radars: tuple[RadarSpec, ...] = DEFAULT_RADARS
    region: Region = field(default_factory=Region)

    @property
    def grid_step_s(self) -> float:
        """The truth grid's step: ``dt_s``, coarsened (whole seconds) so that the grid holds at
        most ``max_grid_cells`` (steps x targets) values per quantity; truth between steps is
        interpolated linearly, for the reports and the scoring alike."""
        n_targets = self.n_aircraft + 2
        needed = self.duration_s * n_targets / max(self.max_grid_cells, 1)
        return float(max(self.dt_s, np.ceil(needed)))

    @property
    def second_balloon_s(self) -> float:
        """When balloon-2 appears (seconds after the start): half-way, at most two hours in."""
        if self.second_balloon_delay_s is not None:
            return float(self.second_balloon_delay_s)
        return float(min(2 * 3600.0, 0.5 * self.duration_s))

    def balloons(self) -> tuple[BalloonSpec, ...]:
        return (
            BalloonSpec("balloon-1", (50.7, 51.3, -115.0, -113.8), 0.0, (120.0, 150.0)),
            BalloonSpec(
                "balloon-2",
                (49.0, 49.8, -114.3, -113.2),
                self.second_balloon_s,
                (95.0, 135.0),
                identity=APRS_IDENTITY,
                callsign="N0CALL-11",
            ),
        )


@dataclass(frozen=True, slots=True)
class TargetTruth:
    """One true object over its life: grid times, geodetic positions and ENU velocity."""

    target_id: int
    name: str
    object_class: ObjectClass
    identity: str | None
    callsign: str | None
    time_s: FloatArray
    lat_deg: FloatArray
    lon_deg: FloatArray
    alt_m: FloatArray
    velocity_enu_mps: FloatArray


@dataclass(slots=True)
class TruthPoints:
    """Columnar truth at chosen times: one row per (time, target alive and observable)."""

    time_s: FloatArray
    target_id: IntArray
    lat_deg: FloatArray
    lon_deg: FloatArray
    alt_m: FloatArray
    velocity_enu_mps: FloatArray

    def __len__(self) -> int:
        return int(self.time_s.size)


@dataclass(slots=True)
class Scenario:
    """A generated episode. ``scan_targets[i][j]`` is the truth target id behind observation j
    of scan i (-1 for clutter), for tests and scoring only — a tracker never sees it."""

    config: ScenarioConfig
    sensors: dict[str, Sensor]
    targets: tuple[TargetTruth, ...]
    scans: list[tuple[float, list[Observation]]]
    scan_targets: list[IntArray]
    truth: TruthGrid
    identities: list[str | None]
    names: list[str]

    @property
    def n_observations(self) -> int:
        return sum(len(obs) for _, obs in self.scans)

    @property
    def end_time_s(self) -> float:
        return self.config.start_time_s + self.config.duration_s

    def observable(self, times_s: npt.ArrayLike) -> BoolArray:
        """(n_times, n_targets): alive and either inside some radar's cover (range, horizon,
        elevation limits) or reporting its own position (ADS-B, APRS)."""
        t = np.asarray(times_s, dtype=np.float64).reshape(-1)
        lat, lon, alt, _vel, alive = self.truth.sample(t)
        reporting = np.array([ident is not None for ident in self.identities])
        seen = np.broadcast_to(reporting, alive.shape).copy()
        ecef = geodetic_to_ecef(lat, lon, alt)
        for spec in self.config.radars:  # a handful of radars; each is one array operation
            polar = ecef_to_polar(ecef, spec.lat_deg, spec.lon_deg, spec.alt_m)
            seen |= (
                (polar[..., 0] <= spec.max_range_m)
                & (polar[..., 0] >= spec.min_range_m)
                & (polar[..., 2] >= spec.min_elevation_deg)
                & (polar[..., 2] <= spec.max_elevation_deg)
            )
        return np.asarray(alive & seen)

    def truth_at(self, times_s: npt.ArrayLike, observable_only: bool = True) -> TruthPoints:
        """Truth rows at the given times (targets alive there, and observable by default)."""
        t = np.asarray(times_s, dtype=np.float64).reshape(-1)
        lat, lon, alt, vel, alive = self.truth.sample(t)
        keep = self.observable(t) if observable_only else alive
        ti, ci = np.nonzero(keep)
        return TruthPoints(
            time_s=t[ti],
            target_id=ci.astype(np.int64),
            lat_deg=lat[ti, ci],
            lon_deg=lon[ti, ci],
            alt_m=alt[ti, ci],
            velocity_enu_mps=vel[ti, ci],
        )


def _aircraft_identities(
    rng: np.random.Generator, n: int, fraction: float
) -> tuple[list[str | None], list[str | None]]:
    has = rng.random(n) < fraction
    canadian = rng.random(n) < 0.4
    address = np.where(canadian, rng.integers(0xC00001, 0xC3FFFF, n), rng.integers(0xA00001, 0xADF7C7, n))
    airline = rng.integers(0, 1 << 16, n)
    flight = rng.integers(1, 9999, n)
    idents: list[str | None] = []
    calls: list[str | None] = []
    for h, ca, a, al, f in zip(
        has.tolist(),
        canadian.tolist(),
        address.tolist(),
        airline.tolist(),
        flight.tolist(),
        strict=True,
    ):
        names = _AIRLINES_CAN if ca else _AIRLINES_USA
        idents.append(f"icao:{a:06X}" if h else None)
        calls.append(f"{names[al % len(names)]}{f}" if h else None)
    return idents, calls


def generate_scenario(config: ScenarioConfig | None = None) -> Scenario:
    """Simulate one episode (deterministic for a given config, seed included)."""
    cfg = config or ScenarioConfig()
    streams = [np.random.default_rng(s) for s in np.random.SeedSequence(cfg.seed).spawn(4 + len(cfg.radars))]
    rng_balloon, rng_aircraft, rng_ident, rng_reports = streams[:4]
    rng_radars = streams[4:]

    dt = cfg.grid_step_s
    if dt != cfg.dt_s:
        log.info("truth grid step raised from %g s to %g s to bound memory", cfg.dt_s, dt)
    n_steps = int(np.floor(cfg.duration_s / dt + 1e-9)) + 1
    grid_t = cfg.start_time_s + dt * np.arange(n_steps, dtype=np.float64)
    balloons = cfg.balloons()
    truth = build_truth(rng_balloon, rng_aircraft, grid_t, balloons, cfg.n_aircraft, cfg.region)
    ac_ident, ac_calls = _aircraft_identities(rng_ident, cfg.n_aircraft, cfg.adsb_fraction)
    identities = [b.identity for b in balloons] + ac_ident
    callsigns = [b.callsign for b in balloons] + ac_calls
    names = [b.name for b in balloons] + [f"aircraft-{i + 1:02d}" for i in range(cfg.n_aircraft)]

    sensors: dict[str, Sensor] = {}
    start, end = cfg.start_time_s, cfg.start_time_s + cfg.duration_s
    batches: list[tuple[ReportSet, list[Observation]]] = []
    for spec, rng in zip(cfg.radars, rng_radars, strict=True):
        if cfg.clutter_scale != 1.0:
            spec = replace(spec, clutter_per_scan=spec.clutter_per_scan * cfg.clutter_scale)
        period = spec.scan_period_s * cfg.radar_report_every
        times = scan_times(start, end, period, float(rng.integers(0, int(spec.scan_period_s))))
        reports = simulate_radar(rng, spec, truth, times)
        sensors[spec.sensor_id] = spec.sensor(cfg.radar_report_every)
        obs = to_observations(
            reports,
            spec.owner,
            PARTNERS,
            [None] * len(identities),
            [None] * len(identities),
            np.searchsorted(times, reports.time_s),
        )
        batches.append((reports, obs))

    adsb_targets = np.array(
        [i for i, ident in enumerate(identities) if ident and ident.startswith("icao:")],
        dtype=np.int64,
    )
    if adsb_targets.size:
        adsb_sensor = replace(ADSB_SENSOR, update_period_s=cfg.adsb_period_s)
        sensors[adsb_sensor.sensor_id] = adsb_sensor
        times = scan_times(start, end, cfg.adsb_period_s, 0.5 * cfg.adsb_period_s)
        reports = simulate_geodetic_reports(
            rng_reports, adsb_sensor, truth, adsb_targets, times, cfg.adsb_probability, 1.0
        )
        obs = to_observations(
            reports,
            adsb_sensor.owner,
            adsb_sensor.releasable_to,
            identities,
            callsigns,
            np.searchsorted(times, reports.time_s),
        )
        batches.append((reports, obs))

    aprs_targets = np.array(
        [i for i, ident in enumerate(identities) if ident and ident.startswith("aprs:")],
        dtype=np.int64,
    )
    if aprs_targets.size:
        aprs_sensor = replace(APRS_SENSOR, update_period_s=cfg.aprs_period_s)
        sensors[aprs_sensor.sensor_id] = aprs_sensor
        times = scan_times(start, end, cfg.aprs_period_s, 0.25 * cfg.aprs_period_s)
        reports = simulate_geodetic_reports(
            rng_reports, aprs_sensor, truth, aprs_targets, times, cfg.aprs_probability, None
        )
        obs = to_observations(
            reports,
            aprs_sensor.owner,
            aprs_sensor.releasable_to,
            identities,
            callsigns,
            np.searchsorted(times, reports.time_s),
        )
        batches.append((reports, obs))

    scans, scan_targets = _group_scans(batches)
    targets = tuple(
        _target_truth(truth, i, names[i], identities[i], callsigns[i]) for i in range(truth.n_targets)
    )
    log.info(
        "scenario seed %d: %d targets, %d sensors, %d scans, %d observations",
        cfg.seed,
        len(targets),
        len(sensors),
        len(scans),
        sum(len(o) for _, o in scans),
    )
    return Scenario(cfg, sensors, targets, scans, scan_targets, truth, identities, names)


def _group_scans(
    batches: list[tuple[ReportSet, list[Observation]]],
) -> tuple[list[tuple[float, list[Observation]]], list[IntArray]]:
    """Merge all sources into time-ordered scans (reports with equal times share a scan)."""
    if not batches:
        return [], []
    times = np.concatenate([r.time_s for r, _ in batches])
    labels = np.concatenate([r.target for r, _ in batches])
    observations = [o for _, obs in batches for o in obs]
    order = np.argsort(times, kind="stable")
    times, labels = times[order], labels[order]
    if times.size == 0:
        return [], []
    starts = np.flatnonzero(np.r_[True, np.diff(times) != 0])
    ends = np.r_[starts[1:], times.size]
    order_list = order.tolist()
    scans: list[tuple[float, list[Observation]]] = []
    scan_targets: list[IntArray] = []
    for s, e in zip(starts.tolist(), ends.tolist(), strict=True):
        scans.append((float(times[s]), [observations[i] for i in order_list[s:e]]))
        scan_targets.append(labels[s:e])
    return scans, scan_targets


def _target_truth(
    truth: TruthGrid, i: int, name: str, identity: str | None, callsign: str | None
) -> TargetTruth:
    idx = np.flatnonzero(truth.alive[:, i])
    return TargetTruth(
        target_id=i,
        name=name,
        object_class=ObjectClass(int(truth.object_class[i])),
        identity=identity,
        callsign=callsign,
        time_s=truth.time_s[idx],
        lat_deg=truth.lat_deg[idx, i],
        lon_deg=truth.lon_deg[idx, i],
        alt_m=truth.alt_m[idx, i],
        velocity_enu_mps=truth.velocity_enu_mps[idx, i],
    )
