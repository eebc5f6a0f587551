"""Scale-out in the store, both backends: cell leases (claim, renew, release, expiry, fencing) and
a cell's step committed in one transaction, each observation once by its id."""

from __future__ import annotations

import threading
from typing import Any

import pytest
from test_store_backends import obs, track  # tests/store is on sys.path (rootdir conftest)

from stratowatch.model import MeasurementKind, Observation, TrackStatus
from stratowatch.store import open_store
from stratowatch.store.base import LeaseLost


def test_claim_renew_release_and_expiry(store: Any) -> None:
    assert store.claim_cells("w1", [3, 1, 2], lease_s=10.0, now=100.0) == [1, 2, 3]
    # held: another worker gets none of them, but a free one
    assert store.claim_cells("w2", [2, 3, 4], lease_s=10.0, now=105.0) == [4]
    assert store.cell_leases() == {1: ("w1", 110.0), 2: ("w1", 110.0), 3: ("w1", 110.0), 4: ("w2", 115.0)}
    # claiming again what one holds extends it
    assert store.claim_cells("w1", [1], lease_s=10.0, now=106.0) == [1]
    assert store.cell_leases()[1] == ("w1", 116.0)
    # w1's leases of 2 and 3 expire at 110: w2 takes 3 over at 111; w1 renews what is left
    assert store.claim_cells("w2", [3], lease_s=10.0, now=111.0) == [3]
    assert store.renew_cells("w1", [1, 2, 3], lease_s=10.0, now=112.0) == [1, 2]
    assert store.cell_leases()[2] == ("w1", 122.0)
    assert store.cell_leases()[3] == ("w2", 121.0)
    store.release_cells("w1", [1, 3])  # 3 is not w1's: untouched
    assert sorted(store.cell_leases()) == [2, 3, 4]
    assert store.claim_cells("w2", [1], lease_s=10.0, now=113.0) == [1]
    assert store.renew_cells("w9", [1, 2], lease_s=5.0, now=113.0) == []
    assert store.claim_cells("w1", [], lease_s=5.0, now=113.0) == []
    assert store.count("cell_leases") == 4


def test_concurrent_claims_give_each_cell_to_one_worker(url: str) -> None:
    stores = [open_store(url) for _ in range(4)]
    won: dict[str, list[int]] = {}
    barrier = threading.Barrier(len(stores))

    def claim(i: int) -> None:
        barrier.wait()
        won[f"w{i}"] = stores[i].claim_cells(f"w{i}", range(20), lease_s=30.0, now=1000.0)

    threads = [threading.Thread(target=claim, args=(i,)) for i in range(len(stores))]
    for t in threads:
        t.start()
    for t in threads:
        t.join(30)
    try:
        cells = [c for got in won.values() for c in got]
        assert sorted(cells) == list(range(20))  # every cell once
        leases = stores[0].cell_leases()
        assert all(leases[c][0] == w for w, got in won.items() for c in got)
    finally:
        for s in stores:
            s.close()


def _radar_obs(t: float) -> Observation:
    return Observation(t, "radar-x", MeasurementKind.POLAR, (20_000.0, 90.0, 1.0), (50.0, 0.2, 0.2))


def test_commit_cell_is_fenced_and_idempotent_by_observation_id(store: Any) -> None:
    store.claim_cells("w1", [7], lease_s=10.0, now=100.0)
    batch = [obs(10.0 + i, 45.0, 5.0 + 0.01 * i) for i in range(5)]
    ids = [f"id{i}" for i in range(5)]
    t1 = track(10_000_000_001, 14.0, 45.0, 5.04)
    new = store.commit_cell(
        7, "w1", observations=batch, obs_ids=ids, tracks=[t1], ended_ids=[], ended_s=14.0,
        state_key="cell.7", state_blob=b"snap-1",
    )  # fmt: skip
    assert new == 5
    # the same observations again (a redelivered message) and two new ones: only the new ones
    more = [obs(20.0, 45.1, 5.1), obs(21.0, 45.2, 5.2)]
    new = store.commit_cell(
        7, "w1", observations=batch + more, obs_ids=[*ids, "id5", "id6"], tracks=[], ended_ids=[t1.track_id],
        ended_s=21.0, state_key="cell.7", state_blob=b"snap-2",
    )  # fmt: skip
    assert new == 2
    assert store.count("observations") == 7
    assert store.load_state("cell.7") == b"snap-2"
    ended = store.track(t1.track_id)
    assert ended is not None and ended.status == TrackStatus.ENDED
    assert len(store.observations(bbox=(44.9, 4.9, 45.3, 5.3), limit=None)) == 7  # placed and indexed
    # observations written without an id (the single-node pipeline) are never refused
    assert store.write_observations(batch) == 5
    assert store.count("observations") == 12
    # another worker took the cell over: w1's commit writes nothing
    store.claim_cells("w2", [7], lease_s=10.0, now=200.0)
    with pytest.raises(LeaseLost, match="w2"):
        store.commit_cell(
            7, "w1", observations=[obs(30.0, 45.0, 5.0)], obs_ids=["id7"], tracks=[t1], ended_ids=[],
            ended_s=30.0, state_key="cell.7", state_blob=b"stale",
        )  # fmt: skip
    assert store.count("observations") == 12
    assert store.load_state("cell.7") == b"snap-2"
    with pytest.raises(LeaseLost, match="nobody"):
        store.commit_cell(
            8, "w1", observations=[], obs_ids=[], tracks=[], ended_ids=[], ended_s=0.0,
            state_key="cell.8", state_blob=b"x",
        )  # fmt: skip


def test_commit_cell_places_radar_plots(store: Any) -> None:
    from stratowatch.model import Sensor

    store.write_sensor(Sensor("radar-x", lat_deg=45.0, lon_deg=5.0, alt_m=100.0))
    store.claim_cells("w1", [1], lease_s=10.0, now=0.0)
    store.commit_cell(
        1, "w1", observations=[_radar_obs(1.0)], obs_ids=["r1"], tracks=[], ended_ids=[], ended_s=1.0,
        state_key="cell.1", state_blob=b"",
    )  # fmt: skip
    assert len(store.observations(bbox=(44.9, 5.1, 45.1, 5.4), limit=None)) == 1
