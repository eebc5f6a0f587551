"""Live sources against real sockets on loopback: TCP, UDP, HTTP polling and a real mosquitto."""

from __future__ import annotations

import http.server
import json
import socket
import threading
import time
from collections.abc import Callable
from pathlib import Path

import pytest

from stratowatch.ingest.base import CollectingSink, ReadContext
from stratowatch.ingest.modes import ModeSReader
from stratowatch.ingest.readsb import ReadsbReader
from stratowatch.ingest.sbs import SbsReader
from stratowatch.ingest.sources import HttpPollSource, MqttSource, TcpSource, UdpSource


def wait_for(cond: Callable[[], bool], timeout_s: float = 10.0) -> bool:
    end = time.monotonic() + timeout_s
    while time.monotonic() < end:
        if cond():
            return True
        time.sleep(0.02)
    return cond()


def sbs_line(i: int, icao: str = "4CA2D6") -> bytes:
    t = f"12:00:{i % 60:02d}.000"
    return (f"MSG,3,1,1,{icao},1,2026/11/26,{t},2026/11/26,{t},,37000,,,{50 + i / 100:.5f},1.00000"
            ",,,0,,0,0\r\n").encode()  # fmt: skip


class LineServer:
    """A TCP server on a free port; each accepted connection gets the next script."""

    def __init__(self, scripts: list[Callable[[socket.socket], None]]) -> None:
        self.srv = socket.create_server(("127.0.0.1", 0))
        self.port = self.srv.getsockname()[1]
        self.scripts = scripts
        self.accepted = 0
        self.thread = threading.Thread(target=self._serve, daemon=True)
        self.thread.start()

    def _serve(self) -> None:
        for script in self.scripts:
            try:
                conn, _ = self.srv.accept()
            except OSError:
                return
            self.accepted += 1
            threading.Thread(target=self._run, args=(script, conn), daemon=True).start()

    @staticmethod
    def _run(script: Callable[[socket.socket], None], conn: socket.socket) -> None:
        with conn:
            script(conn)

    def close(self) -> None:
        self.srv.close()


def test_tcp_source_reads_reconnects_and_stops() -> None:
    def first(conn: socket.socket) -> None:
        conn.sendall(b"".join(sbs_line(i) for i in range(5)) + b"MSG,3,1")  # cut mid-line

    release = threading.Event()

    def second(conn: socket.socket) -> None:
        conn.sendall(b"".join(sbs_line(i) for i in range(5, 8)))
        release.wait(10)

    server = LineServer([first, second])
    sink = CollectingSink()
    src = TcpSource("127.0.0.1", server.port, SbsReader(), ReadContext("tcp-sbs"), sink,
                    backoff_initial_s=0.05, backoff_max_s=0.2)  # fmt: skip
    with src:
        assert wait_for(lambda: len(sink.observations) == 8)
        assert src.connects == 2 and server.accepted == 2
    release.set()
    assert not src.running
    assert [o.value[0] for o in sink.observations] == pytest.approx([50 + i / 100 for i in range(8)])
    # the partial line at the end of the first connection was still accounted for
    assert src.stats.units == 9 and src.stats.accounted == 9
    assert src.stats.quarantined == {"expected 22 comma-separated fields, got 3": 1}
    server.close()


def test_tcp_source_backs_off_exponentially_while_refused() -> None:
    s = socket.socket()
    s.bind(("127.0.0.1", 0))
    port = s.getsockname()[1]
    s.close()  # nothing listens here
    src = TcpSource("127.0.0.1", port, SbsReader(), ReadContext("dead"), CollectingSink(),
                    backoff_initial_s=0.05, backoff_max_s=0.4)  # fmt: skip
    src.start()
    time.sleep(1.2)
    src.stop()
    # 0.05, 0.1, 0.2, 0.4, 0.4 ... : about 5 attempts in 1.2 s, not dozens
    assert 3 <= src.failures <= 7
    assert src.connects == 0


def test_quiet_feed_is_reported_and_cleared() -> None:
    go = threading.Event()

    def script(conn: socket.socket) -> None:
        go.wait(10)
        conn.sendall(sbs_line(1))
        time.sleep(1.0)

    server = LineServer([script])
    sink = CollectingSink()
    src = TcpSource("127.0.0.1", server.port, SbsReader(), ReadContext("quiet"), sink,
                    quiet_after_s=0.2, reconnect_after_quiet_s=None)  # fmt: skip
    with src:
        assert wait_for(lambda: src.quiet, 5)
        assert src.quiet_events == 1
        go.set()
        assert wait_for(lambda: len(sink.observations) == 1, 5)
        assert wait_for(lambda: not src.quiet or src.quiet_events == 2, 5)
    server.close()


def test_quiet_tcp_connection_is_dropped_and_reopened() -> None:
    def silent(conn: socket.socket) -> None:
        time.sleep(2.0)

    def talk(conn: socket.socket) -> None:
        conn.sendall(sbs_line(3))
        time.sleep(0.5)

    server = LineServer([silent, talk])
    sink = CollectingSink()
    src = TcpSource("127.0.0.1", server.port, SbsReader(), ReadContext("halfopen"), sink,
                    quiet_after_s=0.1, reconnect_after_quiet_s=0.3, backoff_initial_s=0.05)  # fmt: skip
    with src:
        assert wait_for(lambda: len(sink.observations) == 1, 5)
        assert src.connects == 2
    server.close()


def test_udp_source_reads_datagrams() -> None:
    sink = CollectingSink()
    src = UdpSource(0, ModeSReader(), ReadContext("udp"), sink, host="127.0.0.1")
    with src:
        assert wait_for(lambda: src.bound_port is not None)
        tx = socket.socket(socket.AF_INET, socket.SOCK_DGRAM)
        port = src.bound_port
        assert port is not None
        tx.sendto(b"1.0,8D40621D58C382D690C8AC2863A7\n", ("127.0.0.1", port))
        tx.sendto(b"2.0,8D40621D58C386435CC412692AD6\n", ("127.0.0.1", port))
        tx.sendto(b"not a frame\n", ("127.0.0.1", port))
        assert wait_for(lambda: src.stats.units == 3, 5)
        tx.close()
    assert len(sink.observations) == 1  # the CPR pair spans two datagrams
    assert sink.observations[0].value[0] == pytest.approx(52.26578, abs=1e-5)
    assert len(sink.quarantined) == 1


def test_http_poll_source() -> None:
    polls: list[float] = []
    frozen = threading.Event()

    class Handler(http.server.BaseHTTPRequestHandler):
        def do_GET(self) -> None:
            polls.append(time.monotonic())
            k = 0 if frozen.is_set() else len(polls)
            ac = {"hex": "a1b2c3", "lat": 45.0 + k / 100, "lon": -100.0, "alt_baro": 60000, "seen_pos": 0.0}
            body = json.dumps({"now": 1000.0 + k, "aircraft": [ac]}).encode()
            self.send_response(200)
            self.send_header("Content-Length", str(len(body)))
            self.end_headers()
            self.wfile.write(body)

        def log_message(self, *args: object) -> None:
            pass

    httpd = http.server.ThreadingHTTPServer(("127.0.0.1", 0), Handler)
    threading.Thread(target=httpd.serve_forever, daemon=True).start()
    sink = CollectingSink()
    url = f"http://127.0.0.1:{httpd.server_address[1]}/data/aircraft.json"
    src = HttpPollSource(url, ReadsbReader(), ReadContext("http"), sink, period_s=0.1)
    with src:
        assert wait_for(lambda: len(sink.observations) >= 3, 5)
    assert src.polls >= 3
    lats = [o.value[0] for o in sink.observations]
    assert lats == sorted(lats) and lats[0] == pytest.approx(45.01)
    assert src.quiet_events == 0
    # a receiver that keeps serving the same snapshot is reported quiet
    stale = CollectingSink()
    url_stale = f"http://127.0.0.1:{httpd.server_address[1]}/stale"
    frozen.set()
    src2 = HttpPollSource(
        url_stale, ReadsbReader(), ReadContext("http"), stale, period_s=0.05, quiet_after_s=0.3
    )
    with src2:
        assert wait_for(lambda: src2.quiet, 5)
    httpd.shutdown()
    assert len(stale.observations) == 1 and src2.stats.messages["readsb_position_unchanged"] >= 2


# ------------------------------------------------------------------------------ MQTT


def test_mqtt_source_with_a_real_broker(mosquitto: int) -> None:
    import paho.mqtt.client as mqtt

    sink = CollectingSink()
    src = MqttSource("127.0.0.1", mosquitto, "adsb/sbs", SbsReader(), ReadContext("mqtt"), sink)
    with src:
        assert src.subscribed.wait(5)
        pub = mqtt.Client(mqtt.CallbackAPIVersion.VERSION2)
        pub.connect("127.0.0.1", mosquitto)
        pub.loop_start()
        for i in range(4):
            pub.publish("adsb/sbs", sbs_line(i), qos=1).wait_for_publish(5)
        pub.publish("adsb/sbs", b"garbage\n", qos=1).wait_for_publish(5)
        assert wait_for(lambda: src.stats.units == 5, 5)
        pub.loop_stop()
        pub.disconnect()
    assert [o.value[0] for o in sink.observations] == pytest.approx([50.0, 50.01, 50.02, 50.03])
    assert len(sink.quarantined) == 1 and src.connects == 1


ASTERIX = Path(__file__).resolve().parents[2].parent / "shared" / "data" / "asterix" / "cat062cat065.raw"


@pytest.mark.skipif(not ASTERIX.exists(), reason=f"real ASTERIX sample absent ({ASTERIX})")
def test_asterix_over_udp_and_tcp() -> None:
    import datetime as dt

    from stratowatch.ingest.base import get_reader

    blocks = ASTERIX.read_bytes()
    ctx = ReadContext("asterix", date_utc=dt.date(2026, 11, 26))
    udp_sink = CollectingSink()
    udp = UdpSource(0, get_reader("asterix"), ctx, udp_sink, host="127.0.0.1")
    with udp:
        assert wait_for(lambda: udp.bound_port is not None)
        tx = socket.socket(socket.AF_INET, socket.SOCK_DGRAM)
        tx.sendto(blocks, ("127.0.0.1", udp.bound_port or 0))
        assert wait_for(lambda: udp.stats.units == 3, 5)
        tx.close()
    tcp_sink = CollectingSink()
    server = LineServer([lambda conn: conn.sendall(blocks)])
    tcp = TcpSource("127.0.0.1", server.port, get_reader("asterix"), ctx, tcp_sink)
    with tcp:
        assert wait_for(lambda: tcp.stats.units == 3, 5)
    server.close()
    # two CAT062 system tracks (CAT065 end-of-batch is a counted message), same either way
    assert udp.stats.observations == tcp.stats.observations == 2
    assert [o.value for o in udp_sink.observations] == [o.value for o in tcp_sink.observations]
    assert udp.stats.messages["asterix_cat065_end_of_batch"] == 1
