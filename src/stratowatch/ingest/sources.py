"""Live sources: run a Reader over a network feed into a Sink, forever, until stopped.

* :class:`TcpSource` — a TCP client (SBS on port 30003, Beast on 30005, raw/AVR on 30002,
  ASTERIX over TCP). Reconnects with exponential backoff when the connection fails or ends.
* :class:`UdpSource` — datagrams (ASTERIX is usually UDP unicast or multicast); each datagram is
  read as one piece of the stream.
* :class:`HttpPollSource` — polls a URL (``aircraft.json``) every ``period_s``.
* :class:`MqttSource` — subscribes to an MQTT topic (paho-mqtt); each message is read as one
  piece.

All sources share :class:`LiveSource`: ``start()`` runs the source in a thread, ``stop()`` ends
it; ``stats`` adds up every read; ``connects`` and ``failures`` count connections. A feed that
sends nothing for ``quiet_after_s`` is reported: a warning is logged, ``quiet`` becomes true and
``quiet_events`` counts the episodes (``quiet`` clears when data arrives again). A TCP source
that stays quiet for ``reconnect_after_quiet_s`` drops the connection and reconnects (a silent
half-open connection is the usual cause).

One reader instance is used for the whole life of a source, so per-aircraft state (CPR pairs,
callsigns) survives reconnects. Readers never raise on bad input; a reader or sink exception
is logged, counted in ``failures`` and the source carries on.
"""

from __future__ import annotations

import contextlib
import io
import logging
import socket
import struct
import threading
import time
import urllib.request
from collections.abc import Callable
from typing import IO, Any

from stratowatch.ingest.base import IngestStats, ReadContext, Reader, Sink

log = logging.getLogger(__name__)


def merge_stats(into: IngestStats, more: IngestStats) -> None:
    into.units += more.units
    into.observations += more.observations
    into.units_with_observations += more.units_with_observations
    into.messages.update(more.messages)
    into.quarantined.update(more.quarantined)
    into.crc_failures += more.crc_failures


class LiveSource:
    """The common life of a live source: thread, backoff, quiet-feed reporting, stats."""

    kind = "live"

    def __init__(
        self,
        reader: Reader,
        ctx: ReadContext,
        sink: Sink,
        *,
        quiet_after_s: float = 60.0,
        backoff_initial_s: float = 0.5,
        backoff_max_s: float = 30.0,
        clock: Callable[[], float] = time.monotonic,
    ) -> None:
        self.reader = reader
        self.ctx = ctx
        self.sink = sink
        self.quiet_after_s = quiet_after_s
        self.backoff_initial_s = backoff_initial_s
        self.backoff_max_s = backoff_max_s
        self.clock = clock
        self.stats = IngestStats()
        self.connects = 0
        self.failures = 0
        self.quiet = False
        self.quiet_events = 0
        self.bytes_received = 0
        self.last_data_s = clock()
        self._stop = threading.Event()
        self._lock = threading.Lock()
        self._thread: threading.Thread | None = None
        self._watchdog: threading.Thread | None = None

    # ---- lifecycle ----------------------------------------------------------------------
    def start(self) -> LiveSource:
        self._stop.clear()
        self.last_data_s = self.clock()
        self._thread = threading.Thread(target=self.run, name=f"{self.kind}:{self.ctx.source}", daemon=True)
        self._watchdog = threading.Thread(target=self._watch, name=f"quiet:{self.ctx.source}", daemon=True)
        self._thread.start()
        self._watchdog.start()
        return self

    def stop(self, timeout_s: float = 5.0) -> None:
        self._stop.set()
        self._interrupt()
        for t in (self._thread, self._watchdog):
            if t is not None and t is not threading.current_thread():
                t.join(timeout_s)

    @property
    def running(self) -> bool:
        return self._thread is not None and self._thread.is_alive()

    def __enter__(self) -> LiveSource:
        return self.start()

    def __exit__(self, *exc: object) -> None:
        self.stop()

    def run(self) -> None:
        """Connect, consume until the feed ends or fails, back off, repeat — until stopped."""
        failures_in_row = 0
        while not self._stop.is_set():
            received_before = self.bytes_received
            try:
                self._session()
            except Exception as exc:  # network errors, and anything a reader or sink raises
                self.failures += 1
                log.warning("%s %s: %s: %s", self.kind, self.ctx.source, type(exc).__name__, exc)
            if self._stop.is_set():
                break
            failures_in_row = 0 if self.bytes_received > received_before else failures_in_row + 1
            delay = min(self.backoff_max_s, self.backoff_initial_s * (2.0 ** max(failures_in_row - 1, 0)))
            log.info("%s %s: reconnecting in %.1f s", self.kind, self.ctx.source, delay)
            self._stop.wait(delay)

    # ---- for subclasses ---------------------------------------------------------------------
    def _session(self) -> None:
        raise NotImplementedError

    def _interrupt(self) -> None:
        """Wake a blocked session so that it notices ``stop()`` or a reconnect request."""

    def _on_quiet(self, quiet_for_s: float) -> None:
        """Called by the watchdog while the feed is quiet."""

    def _data(self, n: int) -> None:
        self.bytes_received += n
        self.last_data_s = self.clock()
        if self.quiet:
            self.quiet = False
            log.info("%s %s: data again", self.kind, self.ctx.source)

    def _read(self, stream: IO[bytes]) -> None:
        with self._lock:
            stats = self.reader.read(stream, self.ctx, self.sink)
            merge_stats(self.stats, stats)

    def _read_piece(self, data: bytes) -> None:
        self._data(len(data))
        self._read(io.BytesIO(data))

    def _watch(self) -> None:
        period = max(min(self.quiet_after_s / 4.0, 1.0), 0.01)
        while not self._stop.wait(period):
            quiet_for = self.clock() - self.last_data_s
            if quiet_for >= self.quiet_after_s:
                if not self.quiet:
                    self.quiet = True
                    self.quiet_events += 1
                    log.warning("%s %s: no data for %.0f s", self.kind, self.ctx.source, quiet_for)
                self._on_quiet(quiet_for)


class _SocketRaw(io.RawIOBase):
    """A socket as a raw stream that reports every byte to its source."""

    def __init__(self, sock: socket.socket, on_data: Callable[[int], None]) -> None:
        self.sock = sock
        self.on_data = on_data

    def readable(self) -> bool:
        return True

    def readinto(self, b: Any) -> int:
        try:
            n = self.sock.recv_into(b)
        except OSError:
            return 0  # closed under us (stop or reconnect): end of stream
        if n:
            self.on_data(n)
        return n


class TcpSource(LiveSource):
    """TCP client for stream feeds (SBS, Beast, AVR, ASTERIX over TCP)."""

    kind = "tcp"

    def __init__(
        self,
        host: str,
        port: int,
        reader: Reader,
        ctx: ReadContext,
        sink: Sink,
        *,
        connect_timeout_s: float = 5.0,
        reconnect_after_quiet_s: float | None = 300.0,
        **kw: Any,
    ) -> None:
        super().__init__(reader, ctx, sink, **kw)
        self.host = host
        self.port = port
        self.connect_timeout_s = connect_timeout_s
        self.reconnect_after_quiet_s = reconnect_after_quiet_s
        self._sock: socket.socket | None = None

    def _session(self) -> None:
        sock = socket.create_connection((self.host, self.port), timeout=self.connect_timeout_s)
        sock.settimeout(None)
        self._sock = sock
        self.connects += 1
        self.last_data_s = self.clock()
        log.info("tcp %s: connected to %s:%d", self.ctx.source, self.host, self.port)
        try:
            if self._stop.is_set():
                return
            self._read(io.BufferedReader(_SocketRaw(sock, self._data), 65536))
        finally:
            self._sock = None
            sock.close()

    def _interrupt(self) -> None:
        sock = self._sock
        if sock is not None:
            with contextlib.suppress(OSError):
                sock.shutdown(socket.SHUT_RDWR)

    def _on_quiet(self, quiet_for_s: float) -> None:
        limit = self.reconnect_after_quiet_s
        if limit is not None and quiet_for_s >= limit and self._sock is not None:
            log.warning("tcp %s: quiet for %.0f s, reconnecting", self.ctx.source, quiet_for_s)
            self.last_data_s = self.clock()
            self._interrupt()


class UdpSource(LiveSource):
    """UDP receiver (unicast, or multicast when ``group`` is given)."""

    kind = "udp"

    def __init__(
        self,
        port: int,
        reader: Reader,
        ctx: ReadContext,
        sink: Sink,
        *,
        host: str = "0.0.0.0",
        group: str | None = None,
        **kw: Any,
    ) -> None:
        super().__init__(reader, ctx, sink, **kw)
        self.host = host
        self.port = port
        self.group = group
        self.bound_port: int | None = None
        self._sock: socket.socket | None = None

    def _session(self) -> None:
        sock = socket.socket(socket.AF_INET, socket.SOCK_DGRAM)
        try:
            sock.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
            sock.bind((self.group or self.host, self.port) if self.group else (self.host, self.port))
            if self.group:
                mreq = struct.pack("4s4s", socket.inet_aton(self.group), socket.inet_aton(self.host))
                sock.setsockopt(socket.IPPROTO_IP, socket.IP_ADD_MEMBERSHIP, mreq)
            sock.settimeout(0.2)
            self._sock = sock
            self.bound_port = sock.getsockname()[1]
            self.connects += 1
            while not self._stop.is_set():
                try:
                    data = sock.recv(65535)
                except TimeoutError:
                    continue
                if data:
                    self._read_piece(data)
        finally:
            self._sock = None
            sock.close()


class HttpPollSource(LiveSource):
    """Polls a URL (e.g. readsb's ``/data/aircraft.json``) every ``period_s``.

    The feed counts as quiet when polls stop bringing new observations (a receiver whose
    snapshot repeats the same old positions is as good as silent)."""

    kind = "http"

    def __init__(
        self,
        url: str,
        reader: Reader,
        ctx: ReadContext,
        sink: Sink,
        *,
        period_s: float = 1.0,
        timeout_s: float = 5.0,
        **kw: Any,
    ) -> None:
        super().__init__(reader, ctx, sink, **kw)
        self.url = url
        self.period_s = period_s
        self.timeout_s = timeout_s
        self.polls = 0

    def _session(self) -> None:
        self.connects += 1
        while not self._stop.is_set():
            started = self.clock()
            with urllib.request.urlopen(self.url, timeout=self.timeout_s) as resp:
                body = resp.read()
            self.polls += 1
            before = self.stats.observations
            self._read(io.BytesIO(body))
            self.bytes_received += len(body)
            if self.stats.observations > before:  # a snapshot with nothing new is not data
                self._data(0)
            self._stop.wait(max(self.period_s - (self.clock() - started), 0.0))


class MqttSource(LiveSource):
    """Subscribes to an MQTT topic; each message payload is read as one piece of the feed.

    paho-mqtt runs the network loop in its own thread and reconnects with exponential backoff
    between ``backoff_initial_s`` and ``backoff_max_s``.

    QoS 1 messages are acknowledged to the broker only once what they delivered is committed,
    when the sink says so (a sink with ``put_seq`` and ``on_commit``, such as the service's feed
    buffer); with a ``client_id`` the session is persistent, so a message delivered but not
    committed before a crash is delivered again. Other sinks acknowledge on receipt.
    """

    kind = "mqtt"

    def __init__(
        self,
        host: str,
        port: int,
        topic: str,
        reader: Reader,
        ctx: ReadContext,
        sink: Sink,
        *,
        qos: int = 1,
        client_id: str = "",
        username: str | None = None,
        password: str | None = None,
        **kw: Any,
    ) -> None:
        super().__init__(reader, ctx, sink, **kw)
        self.host = host
        self.port = port
        self.topic = topic
        self.qos = qos
        self.client_id = client_id
        self.username = username
        self.password = password
        self.subscribed = threading.Event()
        self._client: Any = None
        self._ack_after_commit = hasattr(sink, "put_seq") and hasattr(sink, "on_commit")
        self._unacked: list[tuple[int, int, int]] = []  # (sink seq after the message, mid, qos)
        self._ack_lock = threading.Lock()
        self.acked = 0
        if self._ack_after_commit:
            sink.on_commit(self._committed)  # type: ignore[attr-defined]

    def _committed(self, through: int) -> None:
        with self._ack_lock:
            due = [u for u in self._unacked if u[0] <= through]
            self._unacked = [u for u in self._unacked if u[0] > through]
        client = self._client
        for _, mid, qos in due:
            if client is not None:
                client.ack(mid, qos)
                self.acked += 1

    def _session(self) -> None:
        import paho.mqtt.client as mqtt

        client = mqtt.Client(
            mqtt.CallbackAPIVersion.VERSION2,
            client_id=self.client_id,
            clean_session=not self.client_id,
            manual_ack=self._ack_after_commit,
        )
        if self.username is not None:
            client.username_pw_set(self.username, self.password)
        client.reconnect_delay_set(
            min_delay=max(int(self.backoff_initial_s), 1), max_delay=max(int(self.backoff_max_s), 1)
        )

        def on_connect(c: Any, userdata: Any, flags: Any, reason: Any, props: Any) -> None:
            if getattr(reason, "is_failure", False):
                self.failures += 1
                log.warning("mqtt %s: connection refused: %s", self.ctx.source, reason)
                return
            self.connects += 1
            c.subscribe(self.topic, qos=self.qos)

        def on_subscribe(c: Any, userdata: Any, mid: Any, reasons: Any, props: Any) -> None:
            self.subscribed.set()

        def on_disconnect(c: Any, userdata: Any, flags: Any, reason: Any, props: Any) -> None:
            self.subscribed.clear()
            if not self._stop.is_set():
                log.warning("mqtt %s: disconnected (%s); paho reconnects", self.ctx.source, reason)

        def on_message(c: Any, userdata: Any, msg: Any) -> None:
            try:
                self._read_piece(bytes(msg.payload))
            except Exception as exc:  # never let a bad message kill paho's loop
                self.failures += 1
                log.warning("mqtt %s: %s: %s", self.ctx.source, type(exc).__name__, exc)
            if self._ack_after_commit:
                with self._ack_lock:
                    self._unacked.append((int(self.sink.put_seq), msg.mid, msg.qos))  # type: ignore[attr-defined]

        client.on_connect = on_connect
        client.on_subscribe = on_subscribe
        client.on_disconnect = on_disconnect
        client.on_message = on_message
        self._client = client
        client.connect_async(self.host, self.port, keepalive=30)
        client.loop_start()
        try:
            self._stop.wait()
        finally:
            client.disconnect()
            client.loop_stop()
            self._client = None
