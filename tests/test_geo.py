"""stratowatch.geo against PROJ (pyproj) and against independent textbook computations."""

from __future__ import annotations

import numpy as np
import pytest

from stratowatch import geo

pyproj = pytest.importorskip("pyproj")

N = 100_000
MM = 1e-3


@pytest.fixture(scope="module")
def points() -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    rng = np.random.default_rng(20230204)
    lat = np.degrees(np.arcsin(rng.uniform(-1.0, 1.0, N)))  # uniform over the sphere
    lon = rng.uniform(-180.0, 180.0, N)
    alt = rng.uniform(-500.0, 60_000.0, N)
    return lat, lon, alt


def _to_ecef() -> pyproj.Transformer:
    return pyproj.Transformer.from_crs("EPSG:4979", "EPSG:4978", always_xy=True)


def test_geodetic_to_ecef_matches_proj_to_a_millimetre(points: tuple[np.ndarray, ...]) -> None:
    lat, lon, alt = points
    x, y, z = _to_ecef().transform(lon, lat, alt)
    ours = geo.geodetic_to_ecef(lat, lon, alt)
    err = np.linalg.norm(ours - np.column_stack([x, y, z]), axis=1)
    assert ours.shape == (N, 3)
    assert err.max() < MM


def test_ecef_to_geodetic_matches_proj_to_a_millimetre(points: tuple[np.ndarray, ...]) -> None:
    lat, lon, alt = points
    x, y, z = _to_ecef().transform(lon, lat, alt)
    back = pyproj.Transformer.from_crs("EPSG:4978", "EPSG:4979", always_xy=True)
    plon, plat, palt = back.transform(x, y, z)
    ours = geo.ecef_to_geodetic(np.column_stack([x, y, z]))
    # Compare as positions: the angular differences turned into metres on the ellipsoid.
    north_m = np.radians(ours[:, 0] - plat) * geo.WGS84_A
    dlon = (ours[:, 1] - plon + 180.0) % 360.0 - 180.0
    east_m = np.radians(dlon) * geo.WGS84_A * np.cos(np.radians(plat))
    assert np.abs(north_m).max() < MM
    assert np.abs(east_m).max() < MM
    assert np.abs(ours[:, 2] - palt).max() < MM
    # and against the inputs themselves
    assert np.abs(ours[:, 2] - alt).max() < MM


def test_enu_matches_proj_topocentric(points: tuple[np.ndarray, ...]) -> None:
    lat, lon, alt = points
    sites = [
        (47.505, -111.183, 1060.0),
        (-33.9, 151.2, 40.0),
        (89.9, 10.0, 0.0),
        (0.0, 179.99, -20.0),
    ]
    ecef = geo.geodetic_to_ecef(lat[:10_000], lon[:10_000], alt[:10_000])
    for slat, slon, salt in sites:
        topo = pyproj.Transformer.from_pipeline(
            f"+proj=topocentric +ellps=WGS84 +lat_0={slat} +lon_0={slon} +h_0={salt}"
        )
        e, n, u = topo.transform(ecef[:, 0], ecef[:, 1], ecef[:, 2])
        ours = geo.ecef_to_enu(ecef, slat, slon, salt)
        assert np.abs(ours - np.column_stack([e, n, u])).max() < MM


def test_enu_and_polar_round_trips(points: tuple[np.ndarray, ...]) -> None:
    lat, lon, alt = points
    origin = (49.63, -112.80, 930.0)
    ecef = geo.geodetic_to_ecef(lat[:20_000], lon[:20_000], alt[:20_000])
    enu = geo.ecef_to_enu(ecef, *origin)
    assert np.abs(geo.enu_to_ecef(enu, *origin) - ecef).max() < MM
    polar = geo.enu_to_polar(enu)
    assert np.all((polar[:, 1] >= 0.0) & (polar[:, 1] < 360.0))
    assert np.all(np.abs(polar[:, 2]) <= 90.0)
    assert np.abs(geo.polar_to_enu(polar) - enu).max() < MM
    # geodetic <-> enu directly
    local = geo.geodetic_to_enu(lat[:1000], lon[:1000], alt[:1000], *origin)
    back = geo.enu_to_geodetic(local, *origin)
    assert np.abs(back[:, 2] - alt[:1000]).max() < MM
    assert np.abs(back[:, 0] - lat[:1000]).max() < 1e-9


def test_radar_polar_against_an_independent_computation() -> None:
    """Range/azimuth/elevation of aircraft seen from a radar site, computed a second way:
    PROJ's topocentric frame for the local vector, plain trigonometry for the angles."""
    rng = np.random.default_rng(7)
    site = (47.505, -111.183, 1060.0)
    n = 5000
    lat = rng.uniform(45.0, 50.0, n)
    lon = rng.uniform(-115.0, -107.0, n)
    alt = rng.uniform(0.0, 25_000.0, n)
    x, y, z = _to_ecef().transform(lon, lat, alt)
    topo = pyproj.Transformer.from_pipeline(
        f"+proj=topocentric +ellps=WGS84 +lat_0={site[0]} +lon_0={site[1]} +h_0={site[2]}"
    )
    e, nn, u = topo.transform(x, y, z)
    horiz = np.sqrt(e**2 + nn**2)
    expect_range = np.sqrt(e**2 + nn**2 + u**2)
    expect_az = np.degrees(np.arctan2(e, nn)) % 360.0
    expect_el = np.degrees(np.arcsin(u / expect_range))
    polar = geo.ecef_to_polar(np.column_stack([x, y, z]), *site)
    assert np.abs(polar[:, 0] - expect_range).max() < MM
    # angles to 1 mm of arc at the target's distance
    daz = (polar[:, 1] - expect_az + 180.0) % 360.0 - 180.0
    assert np.abs(np.radians(daz) * horiz).max() < MM
    assert np.abs(np.radians(polar[:, 2] - expect_el) * expect_range).max() < MM
    # and back from the plots to the positions
    back = geo.polar_to_ecef(polar, *site)
    assert np.abs(back - np.column_stack([x, y, z])).max() < MM
    # broadcasting over several sites at once gives the same as one site at a time
    sites = np.array([site, (49.63, -112.80, 930.0)])
    both = geo.ecef_to_polar(np.column_stack([x, y, z])[:, None, :], sites[:, 0], sites[:, 1], sites[:, 2])
    assert both.shape == (n, 2, 3)
    assert np.abs(both[:, 0] - polar).max() < MM


def test_a_known_radar_geometry() -> None:
    """A target due north of the site on the same meridian: azimuth 0 and the textbook
    elevation of a point seen over the Earth's curvature."""
    site_lat, site_lon = 49.0, -110.0
    ecef = geo.geodetic_to_ecef(50.0, -110.0, 10_000.0)
    rng_m, az, el = geo.ecef_to_polar(ecef, site_lat, site_lon, 0.0)
    assert az == pytest.approx(0.0, abs=1e-9) or az == pytest.approx(360.0, abs=1e-9)
    ground_m = float(geo.haversine_m(site_lat, site_lon, 50.0, -110.0))
    assert 110_000 < ground_m < 112_500
    # spherical-Earth elevation from the law of cosines agrees to a few hundredths of a degree
    sphere_el = float(geo.elevation_for_altitude(rng_m, 10_000.0, 0.0))
    assert el == pytest.approx(sphere_el, abs=0.05)
    assert el < np.degrees(np.arctan2(10_000.0, ground_m))  # curvature lowers it


def test_destination_and_haversine_agree() -> None:
    rng = np.random.default_rng(3)
    lat = rng.uniform(-80, 80, 1000)
    lon = rng.uniform(-180, 180, 1000)
    brg = rng.uniform(0, 360, 1000)
    dist = rng.uniform(0, 2_000_000, 1000)
    lat2, lon2 = geo.destination(lat, lon, brg, dist)
    assert np.abs(geo.haversine_m(lat, lon, lat2, lon2) - dist).max() < MM
    assert np.all((lon2 >= -180) & (lon2 < 180))
