"""Tracks leave one tracker and enter another with their ids and full state (cell hand-over)."""

from __future__ import annotations

import numpy as np

from stratowatch.model import MeasurementKind, Observation, TrackStatus
from stratowatch.tracking import Tracker


def _balloon(t: float, sensor: str = "sondes", identity: str | None = "sonde:A1") -> Observation:
    lon = 5.0 + 1e-4 * t  # about 8 m/s east
    return Observation(
        t, sensor, MeasurementKind.GEODETIC, (45.0, lon, 20_000.0), (30.0, 30.0, 50.0), identity=identity
    )


def test_export_import_keeps_ids_state_identity_and_sensors() -> None:
    a = Tracker()
    a._next_id = 1_000_001
    for t in range(0, 600, 60):
        a.step(float(t), [_balloon(float(t)), _balloon(float(t), "radar-z", None)])
    assert len(a.tracks) == 1 and a.tracks.status[0] == TrackStatus.CONFIRMED
    tid = int(a.tracks.track_id[0])
    doc = a.export_tracks([tid, 999])  # unknown ids are left out
    assert list(doc["track_id"]) == [tid]
    assert doc["identity"] == ["sonde:A1"] and doc["sensors"] == [["radar-z", "sondes"]]

    b = Tracker()
    b._next_id = 5_000_001
    b.step(0.0, [_balloon(0.0, identity="sonde:ZZ")])  # a track of its own, with another id
    b.identities.code("something-else")  # codes differ between trackers
    assert list(b.import_tracks(doc)) == [tid]
    assert list(b.tracks.track_id) == [tid, 5_000_001]  # in id order
    row = 0
    np.testing.assert_array_equal(b.tracks.x[row], a.tracks.x[0])
    np.testing.assert_array_equal(b.tracks.P[row], a.tracks.P[0])
    np.testing.assert_allclose(b.tracks.xc[row], a.tracks.xc[0])
    assert b.identities.name(int(b.tracks.identity[row])) == "sonde:A1"
    assert b.tracks.n_updates[row] == a.tracks.n_updates[0]
    assert len(b.import_tracks(doc)) == 0  # twice: nothing changes
    assert len(b.tracks) == 2

    # the track goes on in b under its id, fed by b's sensors
    for t in range(600, 900, 60):
        table = b.step_batch(float(t), _batch(b, [_balloon(float(t))]))
    assert tid in set(table.track_id.tolist())
    tracks = {tr.track_id: tr for tr in b.to_tracks(table)}
    assert tracks[tid].identities == ("sonde:A1",)
    assert set(tracks[tid].sensors) == {"radar-z", "sondes"}
    assert b._next_id == 5_000_002  # imports never move the birth counter

    assert a.remove_tracks([tid]) == 1 and len(a.tracks) == 0
    assert a.remove_tracks([tid]) == 0


def _batch(tracker: Tracker, obs: list[Observation]):  # type: ignore[no-untyped-def]
    from stratowatch.model import ObservationBatch

    return ObservationBatch.from_observations(obs, tracker.identities)
