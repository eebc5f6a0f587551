"""End-to-end behaviour of the tracker on crafted scenes."""

import numpy as np
import pytest

from stratowatch import geo
from stratowatch.model import MeasurementKind, ObjectClass, Observation, ObservationBatch, Sensor, TrackStatus
from stratowatch.tracking import Tracker, TrackerConfig, local_tracker

SIG = np.array([150.0, 300.0])


def _local_batch(t, xyz):
    xyz = np.atleast_2d(xyz)
    return ObservationBatch.from_arrays(
        np.full(len(xyz), t), MeasurementKind.LOCAL_XYZ, xyz, np.tile(SIG, (len(xyz), 1))
    )


def _run_local(tracker, truths, times, rng, pd=1.0, clutter=0):
    """truths: list of callables t -> xyz. Returns list of (t, table)."""
    out = []
    for t in times:
        pts = [f(t) + rng.normal(0, [SIG[0], SIG[0], SIG[1]]) for f in truths if rng.random() < pd]
        for _ in range(clutter):
            pts.append(rng.uniform([0, 0, 0], [4e5, 4e5, 25e3]))
        out.append((t, tracker.step_batch(t, _local_batch(t, np.array(pts) if pts else np.empty((0, 3))))))
    return out


def _aircraft(x0, v):
    return lambda t: np.asarray(x0, float) + np.asarray(v, float) * t


def test_single_aircraft_is_confirmed_then_tracked_accurately():
    rng = np.random.default_rng(0)
    tr = local_tracker(TrackerConfig(confirm_hits=3, confirm_window=4))
    f = _aircraft([1e5, 1e5, 10e3], [200.0, 50.0, 0.0])
    res = _run_local(tr, [f], np.arange(0, 300, 10.0), rng)
    assert len(res[1][1]) == 0  # two hits: still tentative
    assert len(res[2][1]) == 1  # third hit confirms
    t, tab = res[-1]
    err = np.linalg.norm(tab.x[0, :3] - f(t))
    assert err < 150.0
    assert np.linalg.norm(tab.x[0, 3:] - [200.0, 50.0, 0.0]) < 15.0
    assert len({int(tb.track_id[0]) for _, tb in res[2:]}) == 1


def test_clutter_alone_makes_no_confirmed_tracks():
    rng = np.random.default_rng(1)
    tr = local_tracker(TrackerConfig(confirm_hits=3, confirm_window=4))
    res = _run_local(tr, [], np.arange(0, 400, 10.0), rng, clutter=8)
    assert sum(len(tb) for _, tb in res) == 0


def test_crossing_targets_keep_their_identities():
    rng = np.random.default_rng(2)
    tr = local_tracker()
    a = _aircraft([1e5, 2e5, 10e3], [200.0, 0.0, 0.0])
    b = _aircraft([2e5, 1e5, 10.2e3], [0.0, 200.0, 0.0])  # they cross at t=500 s
    res = _run_local(tr, [a, b], np.arange(0, 1000, 10.0), rng, pd=0.95)
    ids_a, ids_b = set(), set()
    for t, tb in res:
        for i in range(len(tb)):
            da, db = np.linalg.norm(tb.x[i, :3] - a(t)), np.linalg.norm(tb.x[i, :3] - b(t))
            (ids_a if da < db else ids_b).add(int(tb.track_id[i]))
    assert len(ids_a) == 1 and len(ids_b) == 1 and ids_a != ids_b


def test_a_target_that_vanishes_is_coasted_briefly_then_deleted():
    rng = np.random.default_rng(3)
    cfg = TrackerConfig(max_misses=3, report_max_misses=1)
    tr = local_tracker(cfg)
    f = _aircraft([1e5, 1e5, 10e3], [150.0, 0.0, 0.0])
    _run_local(tr, [f], np.arange(0, 100, 10.0), rng)
    assert len(tr.tracks) == 1
    # The radar keeps scanning (it says so) but sees nothing.
    t1 = tr.step_batch(100.0, _local_batch(100.0, np.empty((0, 3))), scanned=["default"])
    assert len(t1) == 1 and t1.status[0] == TrackStatus.COASTING
    t2 = tr.step_batch(110.0, _local_batch(110.0, np.empty((0, 3))), scanned=["default"])
    assert len(t2) == 0 and len(tr.tracks) == 1  # still held, no longer reported
    tr.step_batch(120.0, _local_batch(120.0, np.empty((0, 3))), scanned=["default"])
    assert len(tr.tracks) == 0


def test_late_measurement_is_used_not_dropped():
    rng = np.random.default_rng(4)
    f = _aircraft([1e5, 1e5, 10e3], [100.0, 0.0, 0.0])
    tr = local_tracker()
    _run_local(tr, [f], np.arange(0, 200, 20.0), rng)
    before_x = tr.tracks.x.copy()
    before_p = np.trace(tr.tracks.combined()[1][0, :3, :3])
    n_tracks = len(tr.tracks)
    # A partner's report from 170 s arrives after the 180 s scan.
    late = _local_batch(170.0, f(170.0)[None])
    tr.step_batch(185.0, late)
    assert tr.last_stats.late == 1 and tr.last_stats.updates == 1
    assert len(tr.tracks) == n_tracks  # no new track from it
    assert not np.allclose(tr.tracks.x, before_x)
    assert np.trace(tr.tracks.combined()[1][0, :3, :3]) < before_p
    assert tr.tracks.t_s[0] == 180.0  # the track's time does not go backwards


def test_jpda_tracks_two_close_targets():
    rng = np.random.default_rng(5)
    tr = local_tracker(TrackerConfig(association="jpda"))
    a = _aircraft([1e5, 1e5, 10e3], [180.0, 0.0, 0.0])
    b = _aircraft([1e5, 1.05e5, 10e3], [180.0, 0.0, 0.0])
    res = _run_local(tr, [a, b], np.arange(0, 300, 10.0), rng, clutter=3)
    t, tb = res[-1]
    for f in (a, b):
        assert np.min(np.linalg.norm(tb.x[:, :3] - f(t), axis=1)) < 500.0


# ---------------------------------------------------------------- geodetic, multi-sensor
RADAR_A = Sensor(
    "ca-radar",
    owner="CAN",
    kind="radar",
    lat_deg=49.6,
    lon_deg=-112.8,
    alt_m=900.0,
    max_range_m=400e3,
    update_period_s=12.0,
    sigma_range_m=60.0,
    sigma_azimuth_deg=0.15,
    sigma_elevation_deg=0.25,
)
RADAR_B = Sensor(
    "us-radar",
    owner="USA",
    kind="radar",
    lat_deg=47.5,
    lon_deg=-111.2,
    alt_m=1100.0,
    max_range_m=400e3,
    update_period_s=10.0,
    sigma_range_m=60.0,
    sigma_azimuth_deg=0.15,
    sigma_elevation_deg=0.25,
)


def _balloon_path(t):
    """Drifts south-east at ~25 m/s at 18.6 km (from 49.5N 112W)."""
    lat, lon = geo.destination(49.5, -112.0, 135.0, 25.0 * t)
    return float(lat), float(lon), 18_600.0 + 50.0 * np.sin(t / 600.0)


def _polar_obs(sensor, t, lat, lon, alt, rng):
    p = geo.ecef_to_polar(geo.geodetic_to_ecef(lat, lon, alt), sensor.lat_deg, sensor.lon_deg, sensor.alt_m)
    noisy = p + rng.normal(0, [sensor.sigma_range_m, sensor.sigma_azimuth_deg, sensor.sigma_elevation_deg])
    return Observation(
        t,
        sensor.sensor_id,
        MeasurementKind.POLAR,
        (float(noisy[0]), float(noisy[1] % 360), float(noisy[2])),
        (sensor.sigma_range_m, sensor.sigma_azimuth_deg, sensor.sigma_elevation_deg),
    )


def test_balloon_seen_by_two_partners_radars_is_one_track_classified_balloon():
    rng = np.random.default_rng(6)
    tr = Tracker({s.sensor_id: s for s in (RADAR_A, RADAR_B)})
    ids = set()
    tracks = []
    for k in range(0, 300):  # one hour, a scan every 12 s
        t = 12.0 * k
        lat, lon, alt = _balloon_path(t)
        obs = [_polar_obs(RADAR_A if k % 2 else RADAR_B, t, lat, lon, alt, rng)]
        tracks = tr.step(t, obs)
        ids |= {x.track_id for x in tracks}
    assert len(ids) == 1
    (trk,) = tracks
    lat, lon, alt = _balloon_path(t)
    assert geo.haversine_m(trk.lat_deg, trk.lon_deg, lat, lon) < 500.0
    assert abs(trk.alt_m - alt) < 400.0
    assert 20.0 < trk.speed_mps < 30.0
    assert set(trk.sensors) == {"ca-radar", "us-radar"}
    assert trk.classification is not None and trk.classification.label == ObjectClass.BALLOON
    assert trk.model_probabilities["balloon_drift"] > 0.5


def test_sightings_update_an_existing_track_instead_of_starting_new_ones():
    rng = np.random.default_rng(7)
    tr = Tracker({RADAR_B.sensor_id: RADAR_B})
    for k in range(60):
        t = 10.0 * k
        lat, lon, alt = _balloon_path(t)
        tr.step(t, [_polar_obs(RADAR_B, t, lat, lon, alt, rng)])
    n = len(tr.tracks)
    lat, lon, _ = _balloon_path(605.0)
    sighting = Observation(605.0, "public", MeasurementKind.GROUND_2D, (lat + 0.05, lon - 0.05), (15_000.0,))
    tr.step(605.0, [sighting])
    assert len(tr.tracks) == n
    assert tr.last_stats.updates == 1 and tr.last_stats.births == 0


def test_adsb_identity_binds_reports_and_radar_joins_the_same_track():
    rng = np.random.default_rng(8)
    tr = Tracker({RADAR_B.sensor_id: RADAR_B})
    start = (47.0, -110.0)
    tracks = []
    for k in range(120):
        t = float(k)
        lat, lon = geo.destination(*start, 80.0, 220.0 * t)
        alt = 11_000.0
        obs = [
            Observation(
                t,
                "adsb-1",
                MeasurementKind.GEODETIC,
                (float(lat) + rng.normal(0, 3e-4), float(lon) + rng.normal(0, 4e-4), alt),
                (30.0, 20.0),
                identity="icao:A1B2C3",
            )
        ]
        if k % 10 == 0:
            obs.append(_polar_obs(RADAR_B, t, float(lat), float(lon), alt, rng))
        tracks = tr.step(t, obs)
    assert len(tracks) == 1
    (trk,) = tracks
    assert trk.identities == ("icao:A1B2C3",)
    assert set(trk.sensors) == {"adsb-1", "us-radar"}
    assert trk.classification is not None and trk.classification.label == ObjectClass.AIRCRAFT


def test_continental_drift_keeps_altitude_in_ecef():
    """A balloon crossing 5,000 km: no flat-plane error creeps into the altitude."""
    tr = Tracker()
    rng = np.random.default_rng(9)
    alts = []
    for k in range(0, 5 * 24 * 6):  # five days, a position every 10 minutes
        t = 600.0 * k
        lat, lon = geo.destination(60.0, -170.0, 100.0, 12.0 * t)
        obs = Observation(
            t,
            "partner",
            MeasurementKind.GEODETIC,
            (
                float(lat) + rng.normal(0, 0.002),
                float(lon) + rng.normal(0, 0.004),
                18_000.0 + rng.normal(0, 100),
            ),
            (300.0, 150.0),
        )
        trs = tr.step(t, [obs])
        if trs:
            alts.append(trs[0].alt_m)
    assert 12.0 * 600.0 * k > 5.0e6
    assert len(alts) > 600
    assert np.max(np.abs(np.array(alts[10:]) - 18_000.0)) < 400.0
    assert len({x.track_id for x in trs}) == 1


def test_config_rejects_nonsense():
    with pytest.raises(ValueError, match="association"):
        TrackerConfig(association="nearest")
    with pytest.raises(ValueError, match="M <= N"):
        TrackerConfig(confirm_hits=5, confirm_window=3)
