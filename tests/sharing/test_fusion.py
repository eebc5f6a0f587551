"""Track-to-track fusion: covariance intersection is consistent and never double counts,
association pairs many tracks at once, and global ids stay with a balloon across a hand-over."""

from __future__ import annotations

import numpy as np
import pytest

from stratowatch.sharing import fusion
from stratowatch.sharing.fusion import GlobalIds, TrackSet


def _random_cov(rng: np.random.Generator, n: int, scale: float) -> np.ndarray:
    a = rng.normal(size=(n, 6, 6)) * scale
    return np.einsum("nij,nkj->nik", a, a) + np.eye(6) * scale**2 * 0.1


def _tracks(
    node: str,
    ids: list[int] | np.ndarray,
    lat: np.ndarray,
    lon: np.ndarray,
    *,
    t: float = 1000.0,
    first: np.ndarray | float = 0.0,
    sigma_m: float = 300.0,
    alt_m: float = 19_000.0,
    vel: tuple[float, float, float] = (15.0, 3.0, 0.0),
) -> TrackSet:
    n = len(lat)
    return TrackSet.from_geodetic(
        [node],
        np.asarray(ids),
        np.full(n, t),
        np.broadcast_to(np.asarray(first, float), (n,)),
        lat,
        lon,
        np.full(n, alt_m),
        np.tile(vel, (n, 1)),
        np.tile((sigma_m, sigma_m, 2 * sigma_m), (n, 1)),
        np.array([3.0, 3.0, 1.0]),
    )


def test_ci_is_never_tighter_than_the_naive_independent_fusion() -> None:
    rng = np.random.default_rng(1)
    n = 200
    Pa, Pb = _random_cov(rng, n, 100.0), _random_cov(rng, n, 60.0)
    xa, xb = rng.normal(size=(n, 6)) * 50, rng.normal(size=(n, 6)) * 50
    for criterion in ("trace", "det"):
        x, P, w = fusion.covariance_intersection(xa, Pa, xb, Pb, criterion)  # type: ignore[arg-type]
        assert np.all((w >= 0) & (w <= 1))
        naive = np.linalg.inv(np.linalg.inv(Pa) + np.linalg.inv(Pb))
        # P - naive is positive semi-definite (relative tolerance for rounding)
        eig = np.linalg.eigvalsh(P - naive)
        scale = np.abs(np.linalg.eigvalsh(P)).max(axis=1, keepdims=True)
        assert np.all(eig >= -1e-9 * scale)
        # and the fused covariance is no worse than the better input by the chosen criterion
        if criterion == "trace":
            best = np.minimum(np.trace(Pa, axis1=1, axis2=2), np.trace(Pb, axis1=1, axis2=2))
            assert np.all(np.trace(P, axis1=1, axis2=2) <= best * (1 + 1e-9))
        else:
            best = np.minimum(np.linalg.slogdet(Pa)[1], np.linalg.slogdet(Pb)[1])
            assert np.all(np.linalg.slogdet(P)[1] <= best + 1e-9)
        assert x.shape == (n, 6)


def test_ci_weight_minimises_the_trace() -> None:
    rng = np.random.default_rng(2)
    Pa, Pb = _random_cov(rng, 50, 10.0), _random_cov(rng, 50, 10.0)
    w = fusion.ci_weights(Pa, Pb, "trace")
    grid = np.linspace(0.0, 1.0, 401)
    ia, ib = np.linalg.inv(Pa), np.linalg.inv(Pb)
    traces = np.stack(
        [np.trace(np.linalg.inv(g * ia + (1 - g) * ib), axis1=1, axis2=2) for g in grid], axis=1
    )
    got = np.trace(np.linalg.inv(w[:, None, None] * ia + (1 - w)[:, None, None] * ib), axis1=1, axis2=2)
    assert np.all(got <= traces.min(axis=1) * (1 + 1e-9))


def test_fusing_a_track_with_itself_does_not_shrink_its_covariance() -> None:
    rng = np.random.default_rng(3)
    P = _random_cov(rng, 20, 100.0)
    x = rng.normal(size=(20, 6))
    xf, Pf, _ = fusion.covariance_intersection(x, P, x, P)
    np.testing.assert_allclose(Pf, P, rtol=1e-9, atol=1e-9)
    np.testing.assert_allclose(xf, x, rtol=1e-9, atol=1e-6)
    # the naive fusion would halve it: that is the double counting CI avoids
    naive = np.linalg.inv(2 * np.linalg.inv(P))
    assert np.all(np.trace(Pf, axis1=1, axis2=2) > 1.9 * np.trace(naive, axis1=1, axis2=2))


def test_association_pairs_many_tracks_one_to_one() -> None:
    rng = np.random.default_rng(4)
    n = 2000
    lat = rng.uniform(40.0, 55.0, n)
    lon = rng.uniform(-125.0, -70.0, n)
    local = _tracks("CAN", np.arange(1, n + 1), lat, lon)
    # the partner sees 1,500 of them (shuffled, with its own ids and errors) plus 300 others
    seen = rng.permutation(n)[:1500]
    err_deg = 200.0 / 111_000.0
    r_lat = np.concatenate([lat[seen] + rng.normal(0, err_deg, 1500), rng.uniform(40.0, 55.0, 300)])
    r_lon = np.concatenate([lon[seen] + rng.normal(0, err_deg, 1500), rng.uniform(-125.0, -70.0, 300)])
    remote = _tracks("USA", np.arange(500, 500 + 1800), r_lat, r_lon)
    ia, ib, d2 = fusion.associate(local.x, local.P, remote.x, remote.P)
    assert np.unique(ia).size == ia.size and np.unique(ib).size == ib.size
    truth = dict(zip(range(1500), seen.tolist(), strict=True))
    right = sum(truth.get(int(b)) == int(a) for a, b in zip(ia, ib, strict=True))
    assert right >= 1490  # nearly every true pair
    assert np.count_nonzero(ib >= 1500) <= 5  # the partner's other tracks stay apart
    assert np.all(d2 >= 0)

    fused = fusion.start(local, "CAN", 1000.0, q=0.05)
    fused = fusion.fuse(fused, remote, "USA", q=0.05)
    assert len(fused) == n + 1800 - ia.size
    both = fused.n_contributors == 2
    assert both.sum() == ia.size
    assert fused.nodes == ("CAN", "USA")
    assert set(fused.key[both, 1].tolist()) == set(remote.key[ib].tolist())


def test_tracks_at_different_times_are_brought_to_one_epoch() -> None:
    lat, lon = np.array([49.0]), np.array([-110.0])
    local = _tracks("CAN", [1], lat, lon, t=1000.0, vel=(20.0, 0.0, 0.0))
    # the partner's report is 60 s older: 1,200 m further west
    west = lon - 1200.0 / (111_320.0 * np.cos(np.radians(49.0)))
    remote = _tracks("USA", [9], lat, west, t=940.0, vel=(20.0, 0.0, 0.0))
    fused = fusion.fuse(fusion.start(local, "CAN", 1000.0, 0.05), remote, "USA", 0.05)
    assert len(fused) == 1 and fused.n_contributors[0] == 2
    assert fused.time_c[0].tolist() == [1000.0, 940.0]
    out = fusion.geodetic_state(fused.x, fused.P)
    assert out["lon_deg"][0] == pytest.approx(-110.0, abs=1e-4)
    assert out["velocity_enu_mps"][0, 0] == pytest.approx(20.0, abs=0.1)


def test_global_id_is_the_first_started_contributor_and_sticks_across_a_hand_over() -> None:
    lat, lon = np.array([49.0]), np.array([-110.0])
    ids = {node: GlobalIds() for node in ("CAN", "USA")}

    def picture(node: str, t: float, can: bool, usa: bool) -> list[str]:
        """What ``node`` names the balloon: its own track first, the partner's folded in."""
        parts = {
            "CAN": _tracks("CAN", [17], lat, lon, t=t, first=100.0) if can else TrackSet.empty(),
            "USA": _tracks("USA", [5], lat, lon + 0.001, t=t, first=900.0) if usa else TrackSet.empty(),
        }
        other = "USA" if node == "CAN" else "CAN"
        fused = fusion.fuse(fusion.start(parts[node], node, t, 0.05), parts[other], other, 0.05)
        return ids[node].assign(fused).tolist()

    # before the hand-over only CAN holds it; while both do, both nodes name it CAN:17 (the first
    # started); after CAN's track ends, USA's track alone keeps the name
    for t, can, usa in (
        (500.0, True, False),
        (1000.0, True, True),
        (1500.0, True, True),
        (2000.0, False, True),
    ):
        assert picture("CAN", t, can, usa) == ["CAN:17"]
        assert picture("USA", t, can, usa) == ["CAN:17"]
    # a later, unrelated track takes its own name
    far = _tracks("USA", [6], np.array([30.0]), np.array([-90.0]), t=2000.0, first=1900.0)
    fused = fusion.fuse(fusion.start(far, "USA", 2000.0, 0.05), TrackSet.empty(), "CAN", 0.05)
    assert ids["USA"].assign(fused).tolist() == ["USA:6"]


def test_a_partner_track_started_earlier_names_the_pair_whichever_node_fuses() -> None:
    lat, lon = np.array([49.0, 45.0]), np.array([-110.0, -100.0])
    can = _tracks("CAN", [17, 18], lat, lon, first=np.array([500.0, 100.0]))
    usa = _tracks("USA", [5, 6], lat, lon + 0.001, first=np.array([200.0, 300.0]))
    on_can = GlobalIds().assign(fusion.fuse(fusion.start(can, "CAN", 1000.0, 0.05), usa, "USA", 0.05))
    on_usa = GlobalIds().assign(fusion.fuse(fusion.start(usa, "USA", 1000.0, 0.05), can, "CAN", 0.05))
    assert on_can.tolist() == ["USA:5", "CAN:18"]
    assert on_usa.tolist() == ["USA:5", "CAN:18"]


def test_forgotten_contributors_leave_the_table() -> None:
    ids = GlobalIds(forget_s=100.0)
    t = _tracks("CAN", [1, 2], np.array([49.0, 50.0]), np.array([-110.0, -100.0]))
    ids.assign(fusion.start(t, "CAN", 1000.0, 0.05))
    assert len(ids) == 2
    ids.assign(fusion.start(t.take([0]), "CAN", 1050.0, 0.05))
    ids.assign(fusion.start(TrackSet.empty(), "CAN", 1120.0, 0.05))
    assert ids.keys.tolist() == ["CAN:1"]


def test_aliases_match_the_own_picture_to_a_partner_view() -> None:
    rng = np.random.default_rng(5)
    lat, lon = rng.uniform(45, 50, 50), rng.uniform(-115, -100, 50)
    own = _tracks("CAN", np.arange(1, 51), lat, lon)
    view = _tracks(
        "CAN", 1_000_000_000 + np.arange(1, 31)[::-1], lat[:30][::-1], lon[:30][::-1], sigma_m=500.0
    )
    i_own, i_view = fusion.aliases(own, view, 1000.0, 0.05)
    assert sorted(zip(own.track_id[i_own].tolist(), view.track_id[i_view].tolist(), strict=True)) == [
        (k, 1_000_000_000 + k) for k in range(1, 31)
    ]


def test_a_name_is_held_by_one_row_when_a_coasting_track_and_its_successor_part() -> None:
    ids = GlobalIds()
    lat = np.array([49.0])
    can = _tracks("CAN", [17], lat, np.array([-110.0]), t=1000.0, first=100.0)
    usa = _tracks("USA", [5], lat, np.array([-110.001]), t=1000.0, first=900.0)
    assert ids.assign(fusion.fuse(fusion.start(can, "CAN", 1000.0, 0.05), usa, "USA", 0.05)).tolist() == [
        "CAN:17"
    ]
    # CAN's track stopped (its node's feed ended) while USA's went on east: they no longer
    # associate; the newer state keeps the name, the other takes its own key
    can = _tracks("CAN", [17], lat, np.array([-110.3]), t=1400.0, first=100.0)
    usa = _tracks("USA", [5], lat, np.array([-109.0]), t=1500.0, first=900.0)
    fused = fusion.fuse(fusion.start(can, "CAN", 1500.0, 0.05), usa, "USA", 0.05)
    assert len(fused) == 2
    assert ids.assign(fused).tolist() == ["CAN:17'", "CAN:17"]
    # and the names stick
    assert ids.assign(fused).tolist() == ["CAN:17'", "CAN:17"]


def test_names_survive_a_restart_through_the_stored_table() -> None:
    lat, lon = np.array([49.0]), np.array([-110.0])
    ids = GlobalIds()
    both = fusion.fuse(
        fusion.start(_tracks("USA", [5], lat, lon, t=1000.0, first=900.0), "USA", 1000.0, 0.05),
        _tracks("CAN", [17], lat, lon + 0.001, t=1000.0, first=100.0),
        "CAN",
        0.05,
    )
    assert ids.assign(both).tolist() == ["CAN:17"]
    restarted = GlobalIds()
    restarted.restore(ids.snapshot())
    alone = fusion.fuse(
        fusion.start(_tracks("USA", [5], lat, lon, t=1500.0, first=900.0), "USA", 1500.0, 0.05),
        TrackSet.empty(),
        "CAN",
        0.05,
    )
    assert restarted.assign(alone).tolist() == ["CAN:17"]  # not renamed USA:5 after the restart
