import numpy as np
import pytest

from stratowatch import geo
from stratowatch.model import MeasurementKind, ObservationBatch, Sensor
from stratowatch.tracking.frames import EcefFrame, LocalFrame
from stratowatch.tracking.measurements import MeasurementError, build_sets, innovation, predict_measurement

SITE = Sensor("r1", lat_deg=47.5, lon_deg=-111.2, alt_m=1100.0, kind="radar")


def _numeric_jacobian(ms, x, frame, eps=1e-3):
    det = np.zeros(1, np.int64)
    z0, _ = predict_measurement(ms, det, x[None], frame)
    J = np.zeros((z0.shape[1], 6))
    for k in range(3):
        dx = np.zeros(6)
        dx[k] = eps
        zp, _ = predict_measurement(ms, det, (x + dx)[None], frame)
        zm, _ = predict_measurement(ms, det, (x - dx)[None], frame)
        J[:, k] = (zp - zm)[0] / (2 * eps)
    return z0[0], J


@pytest.mark.parametrize("kind", [MeasurementKind.POLAR, MeasurementKind.POLAR_HEIGHT])
def test_radar_jacobian_matches_numerical_derivative(kind):
    frame = EcefFrame()
    target = geo.geodetic_to_ecef(48.3, -110.0, 18_500.0)
    polar = geo.ecef_to_polar(target, SITE.lat_deg, SITE.lon_deg, SITE.alt_m)
    third = polar[2] if kind == MeasurementKind.POLAR else 18_500.0
    batch = ObservationBatch.from_arrays(
        [0.0], kind, [[polar[0], polar[1], third]], [[50.0, 0.1, 0.2]], sensor_ids=["r1"]
    )
    (ms,) = build_sets(batch, frame, {"r1": SITE}, (15e3, 8e3))
    x = np.r_[target, 10.0, 5.0, 0.0]
    z, J = _numeric_jacobian(ms, x, frame)
    _, H = predict_measurement(ms, np.zeros(1, np.int64), x[None], frame)
    assert np.allclose(H[0, :, :3], J[:, :3], rtol=1e-4, atol=1e-9)
    # the measurement of the true target has ~zero innovation
    nu = innovation(ms, np.zeros(1, np.int64), z[None])
    assert np.all(np.abs(nu) < [1e-3, 1e-8, 1e-3])
    # and the converted plot lands on the target
    assert np.linalg.norm(ms.gate_point[0] - target) < (1.0 if kind == MeasurementKind.POLAR else 150.0)


def test_azimuth_innovation_wraps_at_north():
    frame = EcefFrame()
    batch = ObservationBatch.from_arrays(
        [0.0], MeasurementKind.POLAR, [[100e3, 359.9, 5.0]], [[50.0, 0.1, 0.2]], sensor_ids=["r1"]
    )
    (ms,) = build_sets(batch, frame, {"r1": SITE}, (15e3, 8e3))
    zhat = np.array([[100e3, np.radians(0.1), np.radians(5.0)]])
    nu = innovation(ms, np.zeros(1, np.int64), zhat)
    assert np.isclose(nu[0, 1], np.radians(-0.2))


def test_ground_sighting_ignores_altitude():
    frame = EcefFrame()
    batch = ObservationBatch.from_arrays([0.0], MeasurementKind.GROUND_2D, [[45.78, -108.5]], [[20_000.0]])
    (ms,) = build_sets(batch, frame, {}, (15e3, 8e3))
    assert ms.family == "ground2"
    above = geo.geodetic_to_ecef(45.78, -108.5, 18_000.0)
    zhat, _H = predict_measurement(ms, np.zeros(1, np.int64), np.r_[above, 0, 0, 0][None], frame)
    assert np.allclose(innovation(ms, np.zeros(1, np.int64), zhat), 0.0, atol=1e-6)
    # moving the target 1 km east moves the prediction 1 km east
    east = geo.enu_to_ecef([1000.0, 0, 18_000.0], 45.78, -108.5, 0.0)
    z2, _ = predict_measurement(ms, np.zeros(1, np.int64), np.r_[east, 0, 0, 0][None], frame)
    assert np.allclose(z2 - zhat, [[1000.0, 0.0]], atol=0.5)
    # new tracks from a sighting take the altitude prior
    assert np.isclose(frame.altitude(ms.init_pos)[0], 15e3, atol=1.0)


def test_plots_need_a_known_site_and_local_plots_need_a_local_frame():
    batch = ObservationBatch.from_arrays(
        [0.0], MeasurementKind.POLAR, [[1e4, 10.0, 1.0]], [[50.0, 0.1, 0.2]], sensor_ids=["nowhere"]
    )
    with pytest.raises(MeasurementError, match="nowhere"):
        build_sets(batch, EcefFrame(), {}, (15e3, 8e3))
    local = ObservationBatch.from_arrays([0.0], MeasurementKind.LOCAL_XYZ, [[1.0, 2.0, 3.0]], [[10.0, 10.0]])
    with pytest.raises(MeasurementError, match="local frame"):
        build_sets(local, EcefFrame(), {}, (15e3, 8e3))
    (ms,) = build_sets(local, LocalFrame(), {}, (15e3, 8e3))
    assert np.allclose(ms.R[0], np.diag([100.0, 100.0, 100.0]))
