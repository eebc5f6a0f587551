"""One process: live sources -> pipeline -> store and bus, and the HTTP API (uvicorn).

* Each configured source runs in its own thread (:mod:`stratowatch.ingest.sources`) and writes
  into a :class:`FeedBuffer`. The buffer is bounded: when the pipeline falls behind, a source's
  thread waits (TCP then pushes back on the sender) instead of memory growing.
* The ingest task takes what the buffer holds every ``pipeline.step_s`` and runs one
  :meth:`Pipeline.process` step in a worker thread, so the event loop keeps serving the API and
  the live streams. Observations are committed by the step before they are counted.
* ``file`` sources replay a recorded file (paced at ``speed`` x real time) as if it were live.
* :func:`serve` is the coroutine; :func:`run` wraps it in ``asyncio.run``. A ``feed`` coroutine
  can drive the pipeline instead of (or besides) the sources: the demo replays its simulated
  episode that way.
"""

from __future__ import annotations

import asyncio
import logging
import math
import signal
import threading
import time
from collections import Counter
from collections.abc import Awaitable, Callable, Mapping, Sequence
from datetime import date
from pathlib import Path
from typing import Any

from stratowatch.config import ConfigError, Settings, SourceSettings
from stratowatch.ingest.base import QuarantineRecord, ReadContext, Reader
from stratowatch.ingest.registry import SensorRegistry
from stratowatch.model import Observation, Sensor
from stratowatch.service.bus import open_bus
from stratowatch.service.pipeline import _FROM_SETTINGS, Pipeline
from stratowatch.weather.grid import WindGrid

log = logging.getLogger(__name__)

Feed = Callable[[Pipeline], Awaitable[None]]

#: Set while uvicorn serves: it handles SIGINT/SIGTERM itself (graceful shutdown) and re-raises
#: the signal when it is done, which :func:`run` then ignores so that the clean-up can finish.
_SERVING = threading.Event()


class FeedBuffer:
    """The thread-safe, bounded hand-over from source threads to the pipeline (a reader Sink)."""

    def __init__(self, max_observations: int = 200_000) -> None:
        self.max_observations = max_observations
        self.messages: Counter[str] = Counter()
        self.received = 0
        self._obs: list[Observation] = []
        self._quarantine: list[QuarantineRecord] = []
        self._cond = threading.Condition()
        self._closed = False
        # Sequence numbers of accepted items, so that feeds that acknowledge (MQTT QoS 1) can do
        # so only once what they delivered is committed: ``put_seq`` counts items accepted,
        # ``committed_seq`` the prefix the pipeline has committed.
        self.put_seq = 0
        self.committed_seq = 0
        self._obs_seq: list[int] = []
        self._on_commit: list[Callable[[int], None]] = []

    def observation(self, obs: Observation) -> None:
        with self._cond:
            while len(self._obs) >= self.max_observations and not self._closed:
                self._cond.wait(0.5)  # back-pressure on the source thread
            self.put_seq += 1
            self._obs.append(obs)
            self._obs_seq.append(self.put_seq)
            self.received += 1

    def message(self, kind: str) -> None:
        with self._cond:
            self.messages[kind] += 1

    def quarantine(self, record: QuarantineRecord) -> None:
        with self._cond:
            self.put_seq += 1
            self._quarantine.append(record)

    def take(self, max_n: int) -> tuple[list[Observation], list[QuarantineRecord]]:
        obs, q, _ = self.take_through(max_n)
        return obs, q

    def take_through(self, max_n: int) -> tuple[list[Observation], list[QuarantineRecord], int]:
        """Take up to ``max_n`` observations and all quarantine records, with the sequence number
        through which everything accepted has now been taken (pass it to :meth:`committed`)."""
        with self._cond:
            obs, self._obs = self._obs[:max_n], self._obs[max_n:]
            self._obs_seq = self._obs_seq[len(obs) :]
            q, self._quarantine = self._quarantine, []
            through = self._obs_seq[0] - 1 if self._obs_seq else self.put_seq
            self._cond.notify_all()
            return obs, q, through

    def on_commit(self, callback: Callable[[int], None]) -> None:
        """Call ``callback(seq)`` whenever everything accepted up to ``seq`` is committed."""
        self._on_commit.append(callback)

    def committed(self, through: int) -> None:
        with self._cond:
            self.committed_seq = max(self.committed_seq, through)
            done = self.committed_seq
        for callback in list(self._on_commit):
            callback(done)

    def __len__(self) -> int:
        with self._cond:
            return len(self._obs)

    def close(self) -> None:
        with self._cond:
            self._closed = True
            self._cond.notify_all()


class FileFeed:
    """A recorded file replayed as a live feed: read once, then handed over in 1 s steps of data
    time, ``speed`` x real time (0: as fast as the pipeline takes them)."""

    kind = "file"

    def __init__(self, path: Path, reader: Reader, ctx: ReadContext, sink: FeedBuffer, speed: float) -> None:
        self.path, self.reader, self.ctx, self.sink, self.speed = path, reader, ctx, sink, speed
        self.done = threading.Event()
        self._stop = threading.Event()
        self._thread = threading.Thread(target=self._run, name=f"file:{path.name}", daemon=True)

    def start(self) -> FileFeed:
        self._thread.start()
        return self

    def stop(self, timeout_s: float = 5.0) -> None:
        self._stop.set()
        self._thread.join(timeout_s)

    def _run(self) -> None:
        from stratowatch.ingest.base import CollectingSink
        from stratowatch.ingest.replay import paced, steps

        collected = CollectingSink()
        try:
            with self.path.open("rb") as f:
                self.reader.read(f, self.ctx, collected)
        except OSError as exc:
            log.error("%s: cannot read: %s", self.path, exc.strerror or exc)
            self.done.set()
            return
        for rec in collected.quarantined:
            self.sink.quarantine(rec)
        for kind, n in collected.messages.items():
            self.sink.messages[kind] += n
        ordered = sorted(collected.observations, key=lambda o: o.time_s)
        for _t, chunk in paced(steps(ordered, 1.0), self.speed):
            if self._stop.is_set():
                break
            for obs in chunk:
                self.sink.observation(obs)
        self.done.set()


def build_sources(
    sources: Sequence[SourceSettings], settings: Settings, registry: SensorRegistry, sink: FeedBuffer
) -> list[Any]:
    """The configured, enabled sources (not started)."""
    from stratowatch.ingest.replay import open_reader
    from stratowatch.ingest.sources import HttpPollSource, MqttSource, TcpSource, UdpSource

    out: list[Any] = []
    for i, s in enumerate(sources):
        if not s.enabled:
            continue
        reader = open_reader(s.format, registry)
        ctx = ReadContext(
            source=s.name,
            sensor_id=s.sensor_id,
            date_utc=date.fromisoformat(s.date_utc) if s.date_utc else None,
        )
        if s.kind == "tcp":
            assert s.port is not None
            out.append(TcpSource(s.host, s.port, reader, ctx, sink))
        elif s.kind == "udp":
            assert s.port is not None
            out.append(UdpSource(s.port, reader, ctx, sink, host=s.host))
        elif s.kind == "http":
            assert s.url is not None
            out.append(HttpPollSource(s.url, reader, ctx, sink, period_s=s.period_s))
        elif s.kind == "mqtt":
            assert s.topic is not None
            # a stable client id: a persistent session, so QoS 1 messages not yet committed
            # when the service stops are delivered again when it comes back
            out.append(
                MqttSource(
                    s.host, s.port or 1883, s.topic, reader, ctx, sink, client_id=f"stratowatch-{s.name}"
                )
            )
        elif s.kind == "file":
            assert s.path is not None
            out.append(FileFeed(settings.path(s.path), reader, ctx, sink, s.speed))
        else:  # pragma: no cover - the settings model admits only the kinds above
            raise ConfigError(f"sources[{i}].kind: {s.kind!r}")
    return out


async def ingest_loop(pipeline: Pipeline, buffer: FeedBuffer, live: bool) -> None:
    """Every ``step_s``: take the buffered observations and run one pipeline step on them.

    The step time is the newest observation time (data time); with no data, live feeds still
    step at the wall clock so that tracks coast and end on time."""
    cfg = pipeline.settings.pipeline
    while True:
        await asyncio.sleep(cfg.step_s)
        obs, quarantined, through = buffer.take_through(cfg.max_batch)
        if quarantined:
            write = getattr(pipeline.store, "write_quarantine", None)
            if write is not None:
                await asyncio.to_thread(write, quarantined)
        if obs:
            t = max(o.time_s for o in obs)
        elif live:
            t = pipeline.clock()
        else:
            buffer.committed(through)  # quarantine written, nothing else taken
            continue
        last = pipeline.stats.last_time_s
        if math.isfinite(last):
            t = max(t, last)
        try:
            await asyncio.to_thread(pipeline.process, t, obs)
        except Exception:  # one bad step must not end the service: log it with its context
            log.exception("pipeline step at %.3f with %d observations failed", t, len(obs))
            continue  # not committed: feeds that acknowledge will redeliver
        buffer.committed(through)


async def serve(
    settings: Settings,
    *,
    feed: Feed | None = None,
    winds: WindGrid | None = _FROM_SETTINGS,
    sensors: Mapping[str, Sensor] | None = None,
    on_ready: Callable[[str], None] | None = None,
    store: Any = None,
    on_login: Callable[[str], None] | None = None,
) -> None:
    """Run sources, pipeline and API until the server is asked to stop (SIGINT/SIGTERM).

    With no principal in the store, an ``admin`` of the node's partner is created and
    ``on_login`` gets a one-time console sign-in link for it once the server listens."""
    import uvicorn

    from stratowatch.api.main import create_app
    from stratowatch.store import open_store

    own_store = store is None
    if store is None:
        store = await asyncio.to_thread(
            lambda: open_store(settings.store_url, retention=settings.retention.store_settings())
        )
    bus = await asyncio.to_thread(open_bus, settings.bus_url)
    pipeline = await asyncio.to_thread(lambda: Pipeline(settings, store, bus, winds=winds, sensors=sensors))
    buffer = FeedBuffer(max_observations=4 * settings.pipeline.max_batch)
    sources = build_sources(settings.sources, settings, pipeline.registry, buffer)
    live = any(s.kind != "file" for s in sources)
    from stratowatch.cli.auth import bootstrap_admin
    from stratowatch.sharing.auth import Authority

    authority = Authority.from_settings(store, settings)
    first_admin = await asyncio.to_thread(bootstrap_admin, authority)
    app = create_app(pipeline, authority=authority)
    federation = None
    if settings.federation.peers:
        from stratowatch.sharing.federation import Federation

        federation = Federation(settings, bus=bus, store=store)
        app.state.federation = federation
    tls: dict[str, Any] = {}
    if settings.api.tls_certfile and settings.api.tls_keyfile:
        tls = {
            "ssl_certfile": str(settings.path(settings.api.tls_certfile)),
            "ssl_keyfile": str(settings.path(settings.api.tls_keyfile)),
        }
    config = uvicorn.Config(
        app, host=settings.api.host, port=settings.api.port, log_level="warning", lifespan="on", **tls
    )
    server = uvicorn.Server(config)
    tasks: list[asyncio.Task[None]] = []
    try:
        for src in sources:
            src.start()
        if sources:
            tasks.append(asyncio.create_task(ingest_loop(pipeline, buffer, live)))
        if feed is not None:
            tasks.append(asyncio.create_task(_guard(feed(pipeline))))
        if on_ready is not None or on_login is not None:
            login = None
            if first_admin is not None and on_login is not None:
                login = (authority, first_admin, on_login)
            tasks.append(asyncio.create_task(_announce(server, settings, on_ready, login)))
        if federation is not None:
            federation.start()
        _SERVING.set()
        await server.serve()
    finally:
        if federation is not None:
            await federation.stop()
        for task in tasks:
            task.cancel()
        buffer.close()
        for src in sources:
            await asyncio.to_thread(src.stop)
        await asyncio.to_thread(pipeline.close)
        await asyncio.to_thread(bus.close)
        if own_store:
            store.close()
        _SERVING.clear()


async def _guard(coro: Awaitable[None]) -> None:
    try:
        await coro
    except asyncio.CancelledError:
        raise
    except Exception:
        log.exception("the feed failed")


async def _announce(
    server: Any,
    settings: Settings,
    on_ready: Callable[[str], None] | None,
    login: tuple[Any, str, Callable[[str], None]] | None = None,
) -> None:
    from stratowatch.cli.auth import login_link, server_url

    while not server.started:
        await asyncio.sleep(0.05)
    port = settings.api.port
    for s in getattr(server, "servers", []):
        for sock in s.sockets:
            port = sock.getsockname()[1]
    url = server_url(settings, port)
    if on_ready is not None:
        on_ready(url)
    if login is not None:
        authority, principal_id, on_login = login
        on_login(await asyncio.to_thread(login_link, authority, principal_id, url))


def run(settings: Settings, **kw: Any) -> None:
    """``asyncio.run(serve(settings, ...))``: the process's main loop."""
    started = time.perf_counter()

    def on_signal(signum: int, frame: object) -> None:
        if not _SERVING.is_set():  # before or after serving: stop now
            raise KeyboardInterrupt
        log.info("signal %d: shutting down", signum)

    previous = {sig: signal.signal(sig, on_signal) for sig in (signal.SIGINT, signal.SIGTERM)}
    try:
        asyncio.run(serve(settings, **kw))
    finally:
        for sig, handler in previous.items():
            signal.signal(sig, handler)
        log.info("served for %.0f s", time.perf_counter() - started)
