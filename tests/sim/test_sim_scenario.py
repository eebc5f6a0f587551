"""The scenario simulator: truth kinematics, radar/ADS-B/APRS reports, determinism."""

from __future__ import annotations

import re

import numpy as np
import pytest

from stratowatch import geo
from stratowatch.model import MeasurementKind, ObjectClass
from stratowatch.sim import Scenario, ScenarioConfig, generate_scenario
from stratowatch.sim.sensors import DEFAULT_RADARS

CONFIG = ScenarioConfig(seed=5, duration_s=2400.0, n_aircraft=12)


@pytest.fixture(scope="module")
def scenario() -> Scenario:
    return generate_scenario(CONFIG)


def _polar_labels(s: Scenario, sensor_id: str) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """(times, values (n, 3), truth labels) of one radar's plots."""
    times, values, labels = [], [], []
    for (t, obs), lab in zip(s.scans, s.scan_targets, strict=True):
        for o, k in zip(obs, lab.tolist(), strict=True):
            if o.sensor_id == sensor_id:
                times.append(t)
                values.append(o.value)
                labels.append(k)
    return np.array(times), np.array(values), np.array(labels)


def test_two_balloons_and_aircraft_with_stated_kinematics(scenario: Scenario) -> None:
    balloons = [t for t in scenario.targets if t.object_class == ObjectClass.BALLOON]
    aircraft = [t for t in scenario.targets if t.object_class == ObjectClass.AIRCRAFT]
    assert [b.name for b in balloons] == ["balloon-1", "balloon-2"]
    assert len(aircraft) == 12
    start = CONFIG.start_time_s
    # balloon-1 is up from the start, balloon-2 appears half-way (1200 s here)
    assert balloons[0].time_s[0] == start
    assert balloons[1].time_s[0] == pytest.approx(start + CONFIG.second_balloon_s)
    assert CONFIG.second_balloon_s == 1200.0
    assert ScenarioConfig(duration_s=4 * 3600).second_balloon_s == 7200.0  # "hours after the first"
    assert balloons[0].identity is None and balloons[1].identity == "aprs:N0CALL-11"
    for b in balloons:
        speed = np.hypot(b.velocity_enu_mps[:, 0], b.velocity_enu_mps[:, 1])
        assert b.alt_m.min() >= 18_000 and b.alt_m.max() <= 20_000
        assert speed.min() >= 10.0 and speed.max() <= 40.0
        assert 0 < np.ptp(b.alt_m) < 500  # a slight oscillation
        assert np.abs(b.velocity_enu_mps[:, 2]).max() < 1.0
        assert b.lat_deg.min() > 46.0 and b.lat_deg.max() < 52.5
    for a in aircraft:
        speed = np.hypot(a.velocity_enu_mps[:, 0], a.velocity_enu_mps[:, 1])
        assert speed.min() >= 150.0 and speed.max() <= 250.0 + 1e-9
        assert a.alt_m.min() >= 9000.0 and a.alt_m.max() <= 12_000.0
        assert np.all(np.diff(a.time_s) == CONFIG.dt_s)  # one contiguous life
    # identities: ICAO 24-bit addresses for the transponding aircraft, US or Canadian blocks
    idents = [a.identity for a in aircraft if a.identity]
    assert len(idents) >= 6
    for ident in idents:
        assert re.fullmatch(r"icao:(A[0-9A-D][0-9A-F]{4}|C[0-3][0-9A-F]{4})", ident)


def test_positions_follow_the_velocities_on_the_ellipsoid(scenario: Scenario) -> None:
    """The ENU displacement over each 1-s step equals the mean of the two velocities."""
    for tgt in scenario.targets:
        ecef = geo.geodetic_to_ecef(tgt.lat_deg, tgt.lon_deg, tgt.alt_m)
        step = np.diff(ecef, axis=0)
        basis = geo.enu_basis(tgt.lat_deg[:-1], tgt.lon_deg[:-1])
        enu_step = np.einsum("nij,nj->ni", basis, step)
        expect = 0.5 * (tgt.velocity_enu_mps[1:] + tgt.velocity_enu_mps[:-1]) * CONFIG.dt_s
        # 0.05 m per step: the tilt of the frame over 250 m and the trapezoid rule
        assert np.abs(enu_step - expect).max() < 0.05, tgt.name


def test_aircraft_fly_straight_legs_joined_by_coordinated_turns(scenario: Scenario) -> None:
    turned = 0
    for a in scenario.targets[2:]:
        heading = np.unwrap(np.arctan2(a.velocity_enu_mps[:, 0], a.velocity_enu_mps[:, 1]))
        rate = np.degrees(np.abs(np.diff(heading)))
        speed = np.hypot(a.velocity_enu_mps[:, 0], a.velocity_enu_mps[:, 1])
        max_rate = np.degrees(9.80665 * np.tan(np.radians(25.0)) / speed.min())
        assert rate.max() <= max_rate + 1e-6
        straight = np.mean(rate < 1e-9)
        assert straight > 0.5  # mostly straight legs
        turned += bool(rate.max() > 0.5)
    assert turned >= 3


def test_radar_plots_have_the_stated_noise_and_stay_in_cover(scenario: Scenario) -> None:
    spec = next(r for r in DEFAULT_RADARS if r.sensor_id == "usa-great-falls")
    times, values, labels = _polar_labels(scenario, spec.sensor_id)
    det = labels >= 0
    assert det.sum() > 300
    lat, lon, alt, _v, alive = scenario.truth.sample(times[det])
    cols = labels[det]
    rows = np.arange(cols.size)
    assert alive[rows, cols].all()
    truth_ecef = geo.geodetic_to_ecef(lat[rows, cols], lon[rows, cols], alt[rows, cols])
    true_polar = geo.ecef_to_polar(truth_ecef, spec.lat_deg, spec.lon_deg, spec.alt_m)
    assert true_polar[:, 0].max() <= spec.max_range_m
    assert true_polar[:, 2].min() >= spec.min_elevation_deg
    err = values[det] - true_polar
    err[:, 1] = (err[:, 1] + 180.0) % 360.0 - 180.0
    z = err / np.array([spec.sigma_range_m, spec.sigma_azimuth_deg, spec.sigma_elevation_deg])
    assert np.all(np.abs(z.mean(axis=0)) < 0.15)
    assert np.all(np.abs(z.std(axis=0) - 1.0) < 0.1)
    # clutter: Poisson with the stated mean per scan, spread over the radar's cover
    n_scans = np.unique(times).size
    clutter = values[~det]
    assert abs(clutter.shape[0] / n_scans - spec.clutter_per_scan) < 0.5
    assert clutter[:, 0].max() <= spec.max_range_m and clutter[:, 0].min() >= spec.min_range_m
    # every plot of the radar is a POLAR observation with the radar's sigmas and the scan's time
    for t, obs in scenario.scans:
        for o in obs:
            if o.sensor_id == spec.sensor_id:
                assert o.kind == MeasurementKind.POLAR and o.time_s == t
                assert o.sigma == (
                    spec.sigma_range_m,
                    spec.sigma_azimuth_deg,
                    spec.sigma_elevation_deg,
                )


def test_radar_detection_probability_per_class(scenario: Scenario) -> None:
    """Detected / visible equals the configured Pd (aircraft and balloons differ)."""
    spec = next(r for r in DEFAULT_RADARS if r.sensor_id == "can-lethbridge")
    times, _values, labels = _polar_labels(scenario, spec.sensor_id)
    scan_t = np.unique(times)
    # scan times with no plot at all are also scans: rebuild them from the period and phase
    period = spec.scan_period_s
    all_scans = (
        scan_t[0]
        - period * np.floor((scan_t[0] - CONFIG.start_time_s) / period)
        + period * np.arange(int(CONFIG.duration_s / period) + 1)
    )
    all_scans = all_scans[all_scans <= CONFIG.start_time_s + CONFIG.duration_s]
    lat, lon, alt, _v, alive = scenario.truth.sample(all_scans)
    polar = geo.ecef_to_polar(geo.geodetic_to_ecef(lat, lon, alt), spec.lat_deg, spec.lon_deg, spec.alt_m)
    visible = alive & (polar[..., 0] <= spec.max_range_m) & (polar[..., 0] >= spec.min_range_m)
    visible &= (polar[..., 2] >= spec.min_elevation_deg) & (polar[..., 2] <= spec.max_elevation_deg)
    is_balloon = scenario.truth.object_class == ObjectClass.BALLOON
    detections = np.bincount(labels[labels >= 0], minlength=len(scenario.targets))
    for cls, pd in ((~is_balloon, spec.pd_aircraft), (is_balloon, spec.pd_balloon)):
        n_vis = int(visible[:, cls].sum())
        n_det = int(detections[cls].sum())
        assert n_vis > 100
        sd = np.sqrt(pd * (1 - pd) / n_vis)
        assert abs(n_det / n_vis - pd) < 4 * sd + 1e-3


def test_adsb_and_aprs_reports(scenario: Scenario) -> None:
    adsb = [
        (o, k)
        for (_, obs), lab in zip(scenario.scans, scenario.scan_targets, strict=True)
        for o, k in zip(obs, lab.tolist(), strict=True)
        if o.sensor_id == "adsb-net"
    ]
    assert len(adsb) > 500
    for o, k in adsb[:2000]:
        tgt = scenario.targets[k]
        assert o.kind == MeasurementKind.GEODETIC
        assert o.identity == tgt.identity and o.identity.startswith("icao:")
        assert o.callsign == tgt.callsign
        assert o.velocity_enu_mps is not None and o.velocity_sigma_mps == 1.0
        i = int(np.searchsorted(tgt.time_s, o.time_s))
        assert tgt.time_s[i] == o.time_s
        d = geo.haversine_m(o.value[0], o.value[1], tgt.lat_deg[i], tgt.lon_deg[i])
        assert d < 6 * 25.0 * 1.5 and abs(o.value[2] - tgt.alt_m[i]) < 6 * 15.0
    aprs = [(t, o) for t, obs in scenario.scans for o in obs if o.sensor_id == "aprs-is"]
    appear = CONFIG.start_time_s + CONFIG.second_balloon_s
    assert 4 <= len(aprs) <= 11  # every 120 s over the last 1200 s, some lost
    assert all(t >= appear and o.identity == "aprs:N0CALL-11" for t, o in aprs)
    # radar plots never carry identities (primary radar)
    assert all(
        o.identity is None for _, obs in scenario.scans for o in obs if o.kind == MeasurementKind.POLAR
    )


def test_sensor_registry_has_two_partners_with_sites(scenario: Scenario) -> None:
    radars = {k: s for k, s in scenario.sensors.items() if s.kind == "radar-3d"}
    assert len(radars) == 6
    assert {s.owner for s in radars.values()} == {"CAN", "USA"}
    assert len({s.max_range_m for s in radars.values()}) > 3  # different coverage
    for s in radars.values():
        assert s.has_site and 10.0 <= s.update_period_s <= 12.0
        assert 46.0 < s.lat_deg < 52.0 and -116.0 < s.lon_deg < -104.0
    used = {o.sensor_id for _, obs in scenario.scans for o in obs}
    assert used <= set(scenario.sensors)
    times = [t for t, _ in scenario.scans]
    assert times == sorted(times) and len(set(times)) == len(times)
    assert all(o.time_s == t for t, obs in scenario.scans for o in obs)


def test_deterministic_with_a_seed() -> None:
    cfg = ScenarioConfig(seed=11, duration_s=600.0, n_aircraft=4)
    a, b = generate_scenario(cfg), generate_scenario(cfg)
    assert [(t, [o.value for o in obs]) for t, obs in a.scans] == [
        (t, [o.value for o in obs]) for t, obs in b.scans
    ]
    c = generate_scenario(ScenarioConfig(seed=12, duration_s=600.0, n_aircraft=4))
    assert [o.value for _, obs in a.scans for o in obs] != [o.value for _, obs in c.scans for o in obs]
    # more aircraft do not change the balloons (independent random streams)
    d = generate_scenario(ScenarioConfig(seed=11, duration_s=600.0, n_aircraft=9))
    np.testing.assert_array_equal(a.targets[0].lat_deg, d.targets[0].lat_deg)


def test_truth_at_selects_observable_targets(scenario: Scenario) -> None:
    t = np.array([CONFIG.start_time_s + 600.0, CONFIG.start_time_s + 1800.0])
    pts = scenario.truth_at(t)
    assert set(pts.target_id[pts.time_s == t[0]].tolist()).isdisjoint({1})  # balloon-2 not up yet
    assert 1 in pts.target_id[pts.time_s == t[1]]
    every = scenario.truth_at(t, observable_only=False)
    assert len(every) >= len(pts)
    for tid, lat in zip(pts.target_id.tolist(), pts.lat_deg.tolist(), strict=True):
        assert scenario.targets[tid].lat_deg.min() <= lat <= scenario.targets[tid].lat_deg.max()


def test_large_episodes_coarsen_the_truth_grid() -> None:
    cfg = ScenarioConfig(seed=2, duration_s=1800.0, n_aircraft=6, max_grid_cells=5000)
    assert cfg.grid_step_s == 3.0  # 1800 s x 8 targets / 5000 cells, rounded up
    s = generate_scenario(cfg)
    assert np.all(np.diff(s.truth.time_s) == 3.0)
    # plots at scan times between grid steps still sit on the (interpolated) truth
    spec = DEFAULT_RADARS[0]
    times, values, labels = _polar_labels(s, spec.sensor_id)
    det = labels >= 0
    assert np.any((times[det] - cfg.start_time_s) % 3.0 != 0)
    lat, lon, alt, _v, _alive = s.truth.sample(times[det])
    rows = np.arange(det.sum())
    cols = labels[det]
    ecef = geo.geodetic_to_ecef(lat[rows, cols], lon[rows, cols], alt[rows, cols])
    polar = geo.ecef_to_polar(ecef, spec.lat_deg, spec.lon_deg, spec.alt_m)
    z = (values[det, 0] - polar[:, 0]) / spec.sigma_range_m
    assert abs(z.mean()) < 0.2 and abs(z.std() - 1.0) < 0.15
