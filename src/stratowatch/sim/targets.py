"""Truth trajectories: drifting balloons and airliners over a geodetic region.

All targets of an episode live on one time grid (``dt_s``, 1 s by default) as ``(n_steps,
n_targets)`` arrays, built with whole-array operations (cumulative sums over time), never one
target or one step at a time:

* **Aircraft** cruise at a flight level between FL300 and FL390 (9.1–11.9 km) at 150–250 m/s on
  straight legs of 5–25 minutes joined by coordinated turns (25° bank, so the turn rate is
  ``g·tan(25°)/v``, about 1.2–2 °/s) of 20–100°. About 40 % are airborne when the episode starts
  (anywhere in the region); the others enter across the region's border at random times, heading
  inwards. Each one ends when it leaves the region (plus a margin) or after a lifetime of 40–200
  minutes (a descent out of cover, a landing), whichever is first.
* **Balloons** drift with a simple analytic wind: a speed of 10–40 m/s that swells and fades
  over hours, a direction that turns slowly (a few degrees an hour plus a slow sway), and a float
  altitude of 18–20 km that oscillates by a hundred metres or two with a period of about an hour
  (gravity waves, day/night heating). The vertical speed is the altitude's exact derivative.

Positions advance on the WGS-84 ellipsoid: ``dlat/dt = v_north / (M + h)``,
``dlon/dt = v_east / ((N + h) cos lat)`` with the meridian (M) and prime-vertical (N) radii,
integrated with the trapezoid rule, so positions stay consistent with the reported velocities
over the whole region.
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np
import numpy.typing as npt

from stratowatch.geo import WGS84_A, WGS84_E2
from stratowatch.model import ObjectClass

FloatArray = npt.NDArray[np.float64]
IntArray = npt.NDArray[np.int64]
BoolArray = npt.NDArray[np.bool_]

GRAVITY_MPS2 = 9.80665
AIRCRAFT_BANK_DEG = 25.0
FEET_M = 0.3048


@dataclass(frozen=True, slots=True)
class Region:
    """A latitude/longitude box where the episode happens."""

    lat_min_deg: float = 46.5
    lat_max_deg: float = 52.0
    lon_min_deg: float = -116.0
    lon_max_deg: float = -104.0

    def contains(self, lat_deg: FloatArray, lon_deg: FloatArray, margin_deg: float = 0.0) -> BoolArray:
        return np.asarray(
            (lat_deg >= self.lat_min_deg - margin_deg)
            & (lat_deg <= self.lat_max_deg + margin_deg)
            & (lon_deg >= self.lon_min_deg - margin_deg)
            & (lon_deg <= self.lon_max_deg + margin_deg)
        )


@dataclass(frozen=True, slots=True)
class BalloonSpec:
    """One drifting balloon: where and when it appears and what it carries.

    The wind it drifts with is drawn from the episode's seed within the stated ranges; the
    start box is given as (lat_min, lat_max, lon_min, lon_max).
    """

    name: str
    start_box_deg: tuple[float, float, float, float]
    appear_s: float = 0.0
    mean_heading_deg: tuple[float, float] = (115.0, 150.0)
    identity: str | None = None
    callsign: str | None = None


@dataclass(slots=True)
class TruthGrid:
    """All targets on one time grid: ``time_s`` (n_steps,), the rest (n_steps, n_targets).

    Values where ``alive`` is False are meaningless (held at the start/end point).
    """

    time_s: FloatArray
    lat_deg: FloatArray
    lon_deg: FloatArray
    alt_m: FloatArray
    velocity_enu_mps: FloatArray  # (n_steps, n_targets, 3)
    alive: BoolArray
    object_class: npt.NDArray[np.int8]  # (n_targets,) ObjectClass values

    @property
    def n_targets(self) -> int:
        return int(self.lat_deg.shape[1])

    def sample(
        self, times_s: npt.ArrayLike
    ) -> tuple[FloatArray, FloatArray, FloatArray, FloatArray, BoolArray]:
        """Truth at arbitrary times (linear interpolation between grid steps).

        Returns lat, lon, alt (n_times, n_targets), velocity (n_times, n_targets, 3) and alive
        (alive at both neighbouring grid steps; times outside the grid are not alive).
        """
        t = np.asarray(times_s, dtype=np.float64).reshape(-1)
        t0 = self.time_s[0]
        dt = self.time_s[1] - t0 if self.time_s.size > 1 else 1.0
        pos = (t - t0) / dt
        inside = (pos >= -1e-9) & (pos <= self.time_s.size - 1 + 1e-9)
        pos = np.clip(pos, 0.0, self.time_s.size - 1)
        lo = np.minimum(np.floor(pos + 1e-9).astype(np.int64), self.time_s.size - 1)
        hi = np.minimum(lo + 1, self.time_s.size - 1)
        w = np.clip(pos - lo, 0.0, 1.0)[:, None]
        exact = w[:, 0] < 1e-9
        hi = np.where(exact, lo, hi)

        def lerp(a: FloatArray) -> FloatArray:
            if a.ndim == 3:
                ww = w[:, :, None]
                return np.asarray(a[lo] * (1.0 - ww) + a[hi] * ww)
            return np.asarray(a[lo] * (1.0 - w) + a[hi] * w)

        alive = self.alive[lo] & self.alive[hi] & inside[:, None]
        return (
            lerp(self.lat_deg),
            lerp(self.lon_deg),
            lerp(self.alt_m),
            lerp(self.velocity_enu_mps),
            alive,
        )


def ellipsoid_radii(lat_deg: FloatArray) -> tuple[FloatArray, FloatArray]:
    """Meridian radius M and prime-vertical radius N (m) of the WGS-84 ellipsoid."""
    s = np.sin(np.radians(lat_deg))
    w2 = 1.0 - WGS84_E2 * s * s
    n = WGS84_A / np.sqrt(w2)
    m = WGS84_A * (1.0 - WGS84_E2) / (w2 * np.sqrt(w2))
    return m, n


def integrate_geodetic(
    lat0_deg: FloatArray,
    lon0_deg: FloatArray,
    alt_m: FloatArray,
    east_mps: FloatArray,
    north_mps: FloatArray,
    dt_s: float,
    moving: BoolArray | None = None,
) -> tuple[FloatArray, FloatArray]:
    """Latitude and longitude tracks (n_steps, n_targets) from velocities on the grid.

    Trapezoid rule over the grid, starting at (lat0, lon0) on step 0; a step whose start is not
    ``moving`` does not advance the target (it waits at its start point until it is born). The
    radii depend on the
    latitude being integrated, so a first pass with the start latitude's radii is refined once
    with the radii along the first pass's path (the change of a second refinement is below a
    millimetre over hours).
    """
    gate = np.ones((alt_m.shape[0] - 1, 1)) if moving is None else moving[:-1]

    def integrate(rate: FloatArray) -> FloatArray:
        step = 0.5 * (rate[1:] + rate[:-1]) * dt_s * gate
        return np.degrees(np.vstack([np.zeros_like(rate[:1]), np.cumsum(step, axis=0)]))

    lat = np.broadcast_to(lat0_deg, alt_m.shape).astype(np.float64)
    for _ in range(2):
        m, _n = ellipsoid_radii(lat)
        lat = lat0_deg + integrate(north_mps / (m + alt_m))
    _m, n = ellipsoid_radii(lat)
    lon = lon0_deg + integrate(east_mps / ((n + alt_m) * np.cos(np.radians(lat))))
    return lat, lon


def _segment_index(bounds_s: FloatArray, tau_s: FloatArray) -> IntArray:
    """For each (step, target), how many of the target's ascending bounds are <= tau.

    ``bounds_s`` is (n_targets, k) ascending per row; ``tau_s`` is (n_steps, n_targets). One
    ``searchsorted`` over all targets at once: every row is shifted by its own offset so that the
    flattened bounds stay sorted.
    """
    n_t, k = bounds_s.shape
    span = float(max(np.nanmax(np.abs(bounds_s)) if bounds_s.size else 0.0, np.max(np.abs(tau_s)))) * 2 + 1.0
    offset = np.arange(n_t, dtype=np.float64) * span
    flat = (bounds_s + offset[:, None]).reshape(-1)
    idx = np.searchsorted(flat, tau_s + offset[None, :], side="right")
    return np.asarray(idx - (np.arange(n_t) * k)[None, :], dtype=np.int64)


def simulate_aircraft(
    rng: np.random.Generator,
    n: int,
    time_s: FloatArray,
    region: Region,
    initial_fraction: float = 0.4,
) -> tuple[FloatArray, FloatArray, FloatArray, FloatArray, BoolArray]:
    """Aircraft on the grid: lat, lon, alt (n_steps, n), velocity (n_steps, n, 3), alive."""
    n_steps = time_s.size
    dt = float(time_s[1] - time_s[0]) if n_steps > 1 else 1.0
    duration = float(time_s[-1] - time_s[0])
    if n == 0:
        empty = np.zeros((n_steps, 0))
        return empty, empty, empty, np.zeros((n_steps, 0, 3)), np.zeros((n_steps, 0), bool)

    initial = rng.random(n) < initial_fraction
    birth_step = np.where(initial, 0, rng.integers(0, max(n_steps - 1, 1), n))
    # Start point: inside the region for those already airborne, on the border for the others.
    lat_in = rng.uniform(region.lat_min_deg + 0.3, region.lat_max_deg - 0.3, n)
    lon_in = rng.uniform(region.lon_min_deg + 0.3, region.lon_max_deg - 0.3, n)
    side = rng.integers(0, 4, n)
    u = rng.random(n)
    lat_edge = np.select(
        [side == 0, side == 1],
        [np.full(n, region.lat_min_deg), np.full(n, region.lat_max_deg)],
        region.lat_min_deg + u * (region.lat_max_deg - region.lat_min_deg),
    )
    lon_edge = np.select(
        [side == 2, side == 3],
        [np.full(n, region.lon_min_deg), np.full(n, region.lon_max_deg)],
        region.lon_min_deg + u * (region.lon_max_deg - region.lon_min_deg),
    )
    lat0 = np.where(initial, lat_in, lat_edge)
    lon0 = np.where(initial, lon_in, lon_edge)
    # Heading: any for those inside; towards a random interior point for those entering.
    aim_lat = rng.uniform(region.lat_min_deg + 1.0, region.lat_max_deg - 1.0, n)
    aim_lon = rng.uniform(region.lon_min_deg + 1.0, region.lon_max_deg - 1.0, n)
    inward = np.degrees(np.arctan2((aim_lon - lon0) * np.cos(np.radians(lat0)), aim_lat - lat0))
    heading0 = np.where(initial, rng.uniform(0.0, 360.0, n), inward)
    speed = rng.uniform(150.0, 250.0, n)
    flight_level = rng.integers(300, 391, n) // 10 * 10
    alt = flight_level * 100.0 * FEET_M
    lifetime = rng.uniform(40.0, 200.0, n) * 60.0

    # Legs: straight for 5-25 min, then a coordinated turn of 20-100 degrees either way.
    n_legs = int(np.ceil(duration / 300.0)) + 1
    straight = rng.uniform(300.0, 1500.0, (n, n_legs))
    turn_deg = rng.uniform(20.0, 100.0, (n, n_legs)) * rng.choice([-1.0, 1.0], (n, n_legs))
    rate_dps = np.degrees(GRAVITY_MPS2 * np.tan(np.radians(AIRCRAFT_BANK_DEG)) / speed)
    turn_s = np.abs(turn_deg) / rate_dps[:, None]
    bounds = np.cumsum(np.stack([straight, turn_s], axis=2).reshape(n, 2 * n_legs), axis=1)
    tau = (np.arange(n_steps)[:, None] - birth_step[None, :]) * dt  # time since birth
    seg = _segment_index(bounds, np.maximum(tau, 0.0))
    turning = (seg % 2 == 1) & (tau >= 0) & (seg < 2 * n_legs)
    leg = np.minimum(seg // 2, n_legs - 1)
    turn_rate = np.where(turning, np.sign(np.take_along_axis(turn_deg.T, leg, axis=0)) * rate_dps, 0.0)
    heading = heading0[None, :] + np.vstack([np.zeros((1, n)), np.cumsum(turn_rate[:-1] * dt, axis=0)])
    moving = tau >= 0
    hr = np.radians(heading)
    east = np.where(moving, speed * np.sin(hr), 0.0)
    north = np.where(moving, speed * np.cos(hr), 0.0)
    alt_grid = np.broadcast_to(alt, (n_steps, n)).astype(np.float64)
    lat, lon = integrate_geodetic(lat0, lon0, alt_grid, east, north, dt, moving)
    outside = ~region.contains(lat, lon, margin_deg=0.05)
    gone = (outside & moving) | (tau > lifetime[None, :])
    first_gone = np.where(gone.any(axis=0), np.argmax(gone, axis=0), n_steps)
    steps = np.arange(n_steps)[:, None]
    alive = (steps >= birth_step[None, :]) & (steps < first_gone[None, :])
    vel = np.stack([east, north, np.zeros_like(east)], axis=2)
    return lat, lon, alt_grid, vel, alive


def simulate_balloons(
    rng: np.random.Generator, specs: tuple[BalloonSpec, ...], time_s: FloatArray
) -> tuple[FloatArray, FloatArray, FloatArray, FloatArray, BoolArray]:
    """Balloon trajectories on the grid (same outputs as :func:`simulate_aircraft`)."""
    n = len(specs)
    n_steps = time_s.size
    dt = float(time_s[1] - time_s[0]) if n_steps > 1 else 1.0
    if n == 0:
        empty = np.zeros((n_steps, 0))
        return empty, empty, empty, np.zeros((n_steps, 0, 3)), np.zeros((n_steps, 0), bool)
    box = np.array([s.start_box_deg for s in specs], dtype=np.float64)
    lat0 = rng.uniform(box[:, 0], box[:, 1])
    lon0 = rng.uniform(box[:, 2], box[:, 3])
    heading_range = np.array([s.mean_heading_deg for s in specs], dtype=np.float64)
    appear = np.array([s.appear_s for s in specs], dtype=np.float64)
    h0 = rng.uniform(heading_range[:, 0], heading_range[:, 1])
    turn_dph = rng.uniform(-6.0, 6.0, n)  # slow turning of the wind, degrees per hour
    sway_deg = rng.uniform(3.0, 8.0, n)
    sway_period = rng.uniform(2.0, 4.0, n) * 3600.0
    s0 = rng.uniform(14.0, 32.0, n)
    s1 = rng.uniform(2.0, 6.0, n)
    speed_period = rng.uniform(1.5, 3.0, n) * 3600.0
    z0 = rng.uniform(18300.0, 19700.0, n)
    z_amp = rng.uniform(80.0, 220.0, n)
    z_period = rng.uniform(40.0, 90.0, n) * 60.0
    phases = rng.uniform(0.0, 2 * np.pi, (3, n))

    tau = (time_s - time_s[0])[:, None] - appear[None, :]  # time since appearance
    heading = h0 + turn_dph * tau / 3600.0 + sway_deg * np.sin(2 * np.pi * tau / sway_period + phases[0])
    speed = np.clip(s0 + s1 * np.sin(2 * np.pi * tau / speed_period + phases[1]), 10.0, 40.0)
    w_z = 2 * np.pi / z_period
    alt = z0 + z_amp * np.sin(w_z * tau + phases[2])
    up = z_amp * w_z * np.cos(w_z * tau + phases[2])
    moving = tau >= 0
    hr = np.radians(heading)
    east = np.where(moving, speed * np.sin(hr), 0.0)
    north = np.where(moving, speed * np.cos(hr), 0.0)
    up = np.where(moving, up, 0.0)
    lat, lon = integrate_geodetic(lat0, lon0, alt, east, north, dt, moving)
    alive = moving
    vel = np.stack([east, north, up], axis=2)
    return lat, lon, alt, vel, alive


def build_truth(
    rng_balloons: np.random.Generator,
    rng_aircraft: np.random.Generator,
    time_s: FloatArray,
    balloons: tuple[BalloonSpec, ...],
    n_aircraft: int,
    region: Region,
) -> TruthGrid:
    """Balloons first (target ids 0..), then aircraft, on one grid (one random stream each)."""
    b = simulate_balloons(rng_balloons, balloons, time_s)
    a = simulate_aircraft(rng_aircraft, n_aircraft, time_s, region)
    classes = np.array(
        [ObjectClass.BALLOON] * len(balloons) + [ObjectClass.AIRCRAFT] * n_aircraft, dtype=np.int8
    )
    return TruthGrid(
        time_s=time_s,
        lat_deg=np.hstack([b[0], a[0]]),
        lon_deg=np.hstack([b[1], a[1]]),
        alt_m=np.hstack([b[2], a[2]]),
        velocity_enu_mps=np.concatenate([b[3], a[3]], axis=1),
        alive=np.hstack([b[4], a[4]]),
        object_class=classes,
    )
