"""Replay: loading mixed formats, time merge, step cutting, pacing, and the tracker on the steps."""

from __future__ import annotations

from pathlib import Path

import pytest

from stratowatch.ingest.replay import ReplayInputError, load, merge, paced, steps
from stratowatch.model import MeasurementKind, Observation


def obs(t: float, sensor: str = "s") -> Observation:
    return Observation(t, sensor, MeasurementKind.GEODETIC, (45.0, 15.0, 18_000.0), (100.0, 100.0))


def test_merge_is_time_ordered_and_stable() -> None:
    a = [obs(3.0, "a"), obs(1.0, "a")]
    b = [obs(2.0, "b"), obs(1.0, "b")]
    m = merge([a, b])
    assert [(o.time_s, o.sensor_id) for o in m] == [(1.0, "a"), (1.0, "b"), (2.0, "b"), (3.0, "a")]


def test_steps_cut_by_window_and_end_at_last_observation() -> None:
    m = [obs(t) for t in (0.0, 0.2, 0.99, 1.0, 1.5, 4.2)]
    out = list(steps(m, window_s=1.0))
    assert [t for t, _ in out] == [0.99, 1.5, 4.2]
    assert [len(o) for _, o in out] == [3, 2, 1]
    assert list(steps([], 1.0)) == []
    with pytest.raises(ValueError):
        list(steps(m, 0.0))


def test_paced_sleeps_to_data_time_over_speed() -> None:
    now = [100.0]
    slept: list[float] = []

    def clock() -> float:
        return now[0]

    def sleep(s: float) -> None:
        slept.append(s)
        now[0] += s

    seq = [(10.0, []), (30.0, []), (31.0, [])]
    out = list(paced(seq, speed=10.0, clock=clock, sleep=sleep))
    assert [t for t, _ in out] == [10.0, 30.0, 31.0]
    assert slept == pytest.approx([2.0, 0.1])
    slept.clear()
    assert len(list(paced(seq, speed=0.0, clock=clock, sleep=sleep))) == 3
    assert slept == []


def test_load_mixed_formats_by_detection(tmp_path: Path) -> None:
    g = tmp_path / "g.csv"
    g.write_text(
        "time_utc,lat,lon,alt_m,sigma_h_m,sigma_v_m,sensor_id,identity\n"
        "2023-02-04T18:39:02Z,33.5,-78.9,18500,200,300,p,\n"
    )
    s = tmp_path / "s.json"
    s.write_text('{"serial":"S1","datetime":"2023-02-04T18:39:01Z","lat":33.0,"lon":-78.0,"alt":100}\n')
    loaded = load([g, s])
    assert loaded.formats == {str(g): "geodetic-csv", str(s): "sondehub"}
    m = merge(loaded.observations)
    assert [o.identity for o in m] == ["sonde:S1", None]
    bad = tmp_path / "x.bin"
    bad.write_bytes(b"\x00\x01\x02 nothing known")
    with pytest.raises(ReplayInputError, match="cannot detect the format"):
        load([bad])


def test_tracker_runs_on_replayed_steps(tmp_path: Path) -> None:
    tracking = pytest.importorskip("stratowatch.tracking")
    # A balloon drifting east at 10 m/s, reported every 10 s for 5 minutes.
    lines = ["time_utc,lat,lon,alt_m,sigma_h_m,sigma_v_m,sensor_id,identity"]
    for k in range(31):
        lon = -78.9 + k * 100.0 / (111_320.0 * 0.8339)
        lines.append(f"{1675535940 + 10 * k},33.5,{lon:.6f},18500,50,50,p,")
    f = tmp_path / "b.csv"
    f.write_text("\n".join(lines) + "\n")
    tracker = tracking.Tracker()
    last: list = []
    for t, o in steps(merge(load([f]).observations), 1.0):
        last = tracker.step(t, o)
    assert len(last) == 1
    tr = last[0]
    assert tr.speed_mps == pytest.approx(10.0, abs=1.5)
    assert tr.alt_m == pytest.approx(18_500.0, abs=100.0)
