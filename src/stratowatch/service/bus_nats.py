"""A durable bus on NATS JetStream: observations, tracks, alerts and partner feeds across processes.

Subjects and streams (one stream per family, file storage)::

    SW_OBS      sw.obs.<source>.<sensor>      one observation (JSON) or a columnar batch per message
    SW_TRACKS   sw.tracks, sw.predictions      the pipeline's track and prediction events
    SW_ALERTS   sw.alerts, sw.incidents        alert and incident changes
    SW_PARTNER  sw.partner.<partner>           partner feeds (shared tracks)
    SW_CELLS    sw.cell.<cell>.obs             observations routed to a geographic cell (columnar,
                sw.cell.<cell>.handover        full observations); tracks handed over to the cell

One subject tree per cell (``sw.cell.<cell>.>``), so that one durable consumer per cell receives
its observations and its hand-overs in stream order (nats-server 2.9 filters a consumer by one
subject). See :mod:`stratowatch.service.cellworker`.

:class:`NatsBus` has the :class:`~stratowatch.service.bus_base.Bus` surface of the in-process
bus (``publish(topic, event)``, ``subscribe(topics, maxsize)`` with a bounded, drop-oldest
queue for live views such as SSE) and what a durable bus adds:

* **Idempotent publishing.** Every observation message carries ``Nats-Msg-Id`` = its
  observation id (:func:`observation_id`, a content hash), so a re-publish within the stream's
  duplicate window (2 min by default) is stored once. Publishes are sent in order, up to
  ``max_in_flight`` awaiting their stream acknowledgement; a publish that is not acknowledged
  (server down, timeout) is sent again, with the rest of its window, after a backoff, until it
  is. ``publish`` returns at once while the outbox has room and blocks when it holds
  ``outbox_size`` unacknowledged messages: back-pressure on the producer, never unbounded memory.
* **Durable consumers with explicit acknowledgement** (:meth:`NatsBus.durable`): a pull
  consumer fetches a batch, commits its work, then acks (``consumer.ack(messages)``, confirmed
  by the server by default). Unacknowledged messages are delivered again after ``ack_wait_s``
  (a consumer that died), acknowledged ones never are. The server keeps the position, so a
  restarted worker (or a restarted server, with the same store directory) resumes where the
  consumer's acknowledgements left off. ``max_ack_pending`` bounds what a consumer can hold
  unacknowledged: a slow consumer stops receiving instead of growing a backlog in memory.
* **Replay from a stream position** (:meth:`NatsBus.replay`, or ``durable(start_seq=...)``).
* **Reconnect with backoff**: exponential (``reconnect_base_s`` doubling to ``reconnect_max_s``,
  with jitter), forever; the first connection retries the same way up to ``connect_deadline_s``.

Observations travel as JSON (:func:`stratowatch.service.serialize.observation_to_json`, one per
message) or columnar (:func:`encode_batch`: an :class:`~stratowatch.model.ObservationBatch` as
raw little-endian numpy columns behind a small JSON header, one message per sensor per batch).

The client runs on its own event loop in a background thread, so every method may be called
from synchronous code or from any other event loop's thread.
"""

from __future__ import annotations

import asyncio
import concurrent.futures
import contextlib
import hashlib
import json
import logging
import math
import random
import re
import threading
import uuid
from collections import OrderedDict, deque
from collections.abc import Coroutine, Iterable, Mapping, Sequence
from dataclasses import dataclass
from typing import Any, TypeVar, cast

import nats
import nats.errors
import nats.js.errors
import numpy as np
import numpy.typing as npt
from nats.aio.client import Client as NatsClient
from nats.aio.msg import Msg
from nats.aio.subscription import Subscription as NatsSubscription
from nats.js import JetStreamContext, api

from stratowatch.model import IdentityCodes, Observation, ObservationBatch
from stratowatch.service.bus import ALL_TOPICS, Subscription
from stratowatch.service.serialize import observation_from_json, observation_to_json

log = logging.getLogger(__name__)

T = TypeVar("T")

PREFIX = "sw"
#: Stream name -> the subjects it holds.
STREAMS: dict[str, tuple[str, ...]] = {
    "SW_OBS": ("sw.obs.>",),
    "SW_TRACKS": ("sw.tracks", "sw.predictions"),
    "SW_ALERTS": ("sw.alerts", "sw.incidents"),
    "SW_PARTNER": ("sw.partner.>",),
    "SW_CELLS": ("sw.cell.>",),
}
#: What a subscription to every topic ('*') receives: events, not observations.
EVENT_SUBJECTS = ("sw.tracks", "sw.predictions", "sw.alerts", "sw.incidents", "sw.partner.>")
HEADER_FORMAT = "Sw-Format"
FORMAT_JSON = "json"
FORMAT_COLUMNAR = "columnar-v1"
FORMAT_HANDOVER = "handover-v1"
MSG_ID = "Nats-Msg-Id"

_TOKEN_BAD = re.compile(r"[^A-Za-z0-9_\-]")


class BusUnavailable(ConnectionError):
    """The NATS server could not be reached within the connect deadline."""


class BusFormatError(ValueError):
    """A message's payload is not what its format header says; the message names subject and seq."""


# --------------------------------------------------------------------------- subjects


def token(name: str) -> str:
    """A NATS subject token for a source or sensor name (``.``, ``*``, ``>``, blanks -> ``_``)."""
    return _TOKEN_BAD.sub("_", name) or "_"


def topic_subject(topic: str) -> str:
    """``"tracks"`` -> ``"sw.tracks"``; ``"partner.ca"`` -> ``"sw.partner.ca"``."""
    if topic == ALL_TOPICS:
        return f"{PREFIX}.>"
    return f"{PREFIX}.{'.'.join(token(t) for t in topic.split('.'))}"


def observation_subject(source: str, sensor_id: str) -> str:
    return f"{PREFIX}.obs.{token(source)}.{token(sensor_id)}"


def cell_subject(cell_id: int) -> str:
    """Where the observations routed to a cell go."""
    return f"{PREFIX}.cell.{int(cell_id)}.obs"


def handover_subject(cell_id: int) -> str:
    """Where tracks handed over to a cell go."""
    return f"{PREFIX}.cell.{int(cell_id)}.handover"


def cell_filter(cell_id: int) -> str:
    """A consumer filter for everything of one cell (observations and hand-overs, in order)."""
    return f"{PREFIX}.cell.{int(cell_id)}.>"


def stream_for(subject: str) -> str:
    """The stream whose subjects hold ``subject`` (or a filter such as ``sw.obs.adsb.>``)."""
    for name, patterns in STREAMS.items():
        for p in patterns:
            if (p.endswith(".>") and (subject + ".").startswith(p[:-1])) or subject == p:
                return name
    raise ValueError(f"subject {subject!r} is in none of the streams {sorted(STREAMS)}")


# --------------------------------------------------------------------------- payloads

#: The keys that identify the parts of one event (with the subject).
PART_KEYS = ("time_s", "audience", "cell")


def split_event(event: Mapping[str, Any], size: int, limit: int) -> list[bytes]:
    """An event too large for one message as encoded parts: its longest list (a tracks event's
    ``tracks``) cut into slices, each part the event with one slice and ``part``/``parts``
    (0-based), ``part_key`` (which list). Every other key is repeated in each part.
    ``size``: the encoded event's length."""
    lists = [(len(_dumps(v)), str(k)) for k, v in event.items() if isinstance(v, list) and len(v) > 1]
    if not lists:
        raise BusFormatError(
            f"an event of {size} bytes is larger than the server takes ({limit}) and cannot be split"
        )
    key = max(lists)[1]
    items = list(event[key])
    n = max(2, math.ceil(size / (0.8 * limit)))
    while True:
        cuts = np.array_split(np.arange(len(items)), min(n, len(items)))
        parts = [
            _dumps(
                {
                    **event,
                    key: items[int(c[0]) : int(c[-1]) + 1],
                    "part": k,
                    "parts": len(cuts),
                    "part_key": key,
                }
            )
            for k, c in enumerate(cuts)
        ]
        if all(len(p) <= limit for p in parts):
            return parts
        if n >= len(items):
            raise BusFormatError(f"one item of {key!r} is larger than the server takes ({limit} bytes)")
        n = min(len(items), 2 * n)


class PartAssembler:
    """Puts the parts of split events (:func:`split_event`) back together for live subscribers;
    whole events pass through. Keeps the few latest incomplete events only."""

    def __init__(self, keep: int = 8) -> None:
        self.keep = keep
        self._pending: dict[tuple[Any, ...], dict[int, dict[str, Any]]] = {}

    def add(self, subject: str, doc: dict[str, Any]) -> dict[str, Any] | None:
        n = doc.get("parts")
        if not isinstance(n, int) or n < 2 or not isinstance(doc.get("part"), int):
            return doc
        key = (subject, n, *(json.dumps(doc.get(k)) for k in PART_KEYS))
        got = self._pending.setdefault(key, {})
        got[int(doc["part"])] = doc
        if len(got) < n:
            while len(self._pending) > self.keep:
                del self._pending[next(iter(self._pending))]
            return None
        del self._pending[key]
        return join_parts([got[k] for k in sorted(got)])


def join_parts(parts: Sequence[Mapping[str, Any]]) -> dict[str, Any]:
    """The whole event from all its parts, in order."""
    key = str(parts[0]["part_key"])
    whole = {k: v for k, v in parts[0].items() if k not in ("part", "parts", "part_key")}
    whole[key] = [x for p in parts for x in p[key]]
    return whole


def _dumps(doc: Any) -> bytes:
    return json.dumps(doc, separators=(",", ":"), allow_nan=False, sort_keys=True).encode()


def observation_id(o: Observation) -> str:
    """A stable id for an observation: a hash of its JSON form (same report, same id)."""
    return hashlib.blake2b(_dumps(observation_to_json(o)), digest_size=16).hexdigest()


_MAGIC = b"SWOB1\0"
_COLUMNS = (
    "time_s",
    "kind",
    "value",
    "sigma",
    "sensor_index",
    "velocity_enu_mps",
    "velocity_sigma_mps",
    "identity",
    "obs_index",
)


def encode_batch(
    batch: ObservationBatch, identities: IdentityCodes, extra: dict[str, Any] | None = None
) -> bytes:
    """An ObservationBatch as bytes: a JSON header (names, dtypes, shapes, strings) and raw columns.

    Identity codes are local to a process, so the header carries the identity strings the rows
    use and the rows index into that list; :func:`decode_batch` re-interns them. ``extra`` (JSON)
    rides in the header for :func:`batch_extra` (the cell stream keeps there what an Observation
    has and the columns do not: ids, labels, originators, callsigns, sources).
    """
    codes = np.asarray(batch.identity, dtype=np.int64)
    used = np.unique(codes[codes >= 0])
    local = np.where(codes >= 0, np.searchsorted(used, np.maximum(codes, 0)), -1).astype(np.int64)
    arrays: list[npt.NDArray[Any]] = []
    columns = []
    for name in _COLUMNS:
        arr = local if name == "identity" else np.asarray(getattr(batch, name))
        arr = np.ascontiguousarray(arr, dtype=arr.dtype.newbyteorder("<"))
        arrays.append(arr)
        columns.append([name, arr.dtype.str, list(arr.shape)])
    header = _dumps(
        {
            "n": len(batch),
            "sensor_ids": list(batch.sensor_ids),
            "identities": [identities.name(int(c)) for c in used],
            "category": list(batch.category),
            "columns": columns,
            **({"extra": extra} if extra is not None else {}),
        }
    )
    return b"".join([_MAGIC, len(header).to_bytes(4, "little"), header, *(a.tobytes() for a in arrays)])


def _header(data: bytes) -> tuple[dict[str, Any], int]:
    if not data.startswith(_MAGIC) or len(data) < len(_MAGIC) + 4:
        raise BusFormatError("not a columnar observation batch (bad magic)")
    at = len(_MAGIC)
    size = int.from_bytes(data[at : at + 4], "little")
    at += 4
    try:
        header = json.loads(data[at : at + size])
    except ValueError as exc:
        raise BusFormatError(f"columnar batch header: {exc}") from None
    if not isinstance(header, dict):
        raise BusFormatError("columnar batch header: not a JSON object")
    return header, at + size


def batch_extra(data: bytes) -> dict[str, Any]:
    """The ``extra`` document :func:`encode_batch` was given ({} when none)."""
    return dict(_header(data)[0].get("extra") or {})


def decode_batch(data: bytes, identities: IdentityCodes) -> ObservationBatch:
    """The inverse of :func:`encode_batch` (identity strings interned into ``identities``)."""
    header, at = _header(data)
    cols: dict[str, npt.NDArray[Any]] = {}
    for name, dtype, shape in header["columns"]:
        dt = np.dtype(dtype)
        count = int(np.prod(shape)) if shape else 1
        end = at + count * dt.itemsize
        if end > len(data):
            raise BusFormatError(f"columnar batch: column {name!r} runs past the payload")
        cols[name] = (
            np.frombuffer(data, dtype=dt, count=count, offset=at).reshape(shape).astype(dt.newbyteorder("="))
        )
        at = end
    missing = [c for c in _COLUMNS if c not in cols]
    if missing:
        raise BusFormatError(f"columnar batch: missing columns {missing}")
    table = identities.codes(header["identities"]) if header["identities"] else np.empty(0, np.int64)
    local = cols["identity"]
    identity = np.where(local >= 0, table[np.maximum(local, 0)] if table.size else -1, -1).astype(np.int64)
    return ObservationBatch(
        time_s=cols["time_s"],
        kind=cols["kind"].astype(np.int8),
        value=cols["value"],
        sigma=cols["sigma"],
        sensor_index=cols["sensor_index"],
        sensor_ids=[str(s) for s in header["sensor_ids"]],
        velocity_enu_mps=cols["velocity_enu_mps"],
        velocity_sigma_mps=cols["velocity_sigma_mps"],
        identity=identity,
        obs_index=cols["obs_index"],
        category=list(header["category"]),
    )


def _take(batch: ObservationBatch, rows: npt.NDArray[np.int64]) -> ObservationBatch:
    return ObservationBatch(
        time_s=batch.time_s[rows],
        kind=batch.kind[rows],
        value=batch.value[rows],
        sigma=batch.sigma[rows],
        sensor_index=batch.sensor_index[rows],
        sensor_ids=list(batch.sensor_ids),
        velocity_enu_mps=batch.velocity_enu_mps[rows],
        velocity_sigma_mps=batch.velocity_sigma_mps[rows],
        identity=batch.identity[rows],
        obs_index=batch.obs_index[rows],
        category=[batch.category[i] for i in rows] if batch.category else [],
    )


# --------------------------------------------------------------------------- settings, messages


@dataclass(frozen=True, slots=True)
class NatsSettings:
    """Connection, stream and flow-control settings of a :class:`NatsBus`."""

    url: str = "nats://127.0.0.1:4222"
    name: str = "stratowatch"
    connect_deadline_s: float = 10.0
    reconnect_base_s: float = 0.1
    reconnect_max_s: float = 2.0
    request_timeout_s: float = 5.0
    publish_timeout_s: float = 2.0
    max_in_flight: int = 1024
    outbox_size: int = 50_000
    stream_max_age_s: float = 7 * 86400.0
    duplicate_window_s: float = 120.0
    memory_storage: bool = False


@dataclass(frozen=True, slots=True)
class PubAck:
    stream: str
    seq: int
    duplicate: bool


@dataclass(frozen=True, slots=True)
class ConsumerState:
    """A durable consumer's position: what the server has delivered and what was acknowledged."""

    name: str
    num_pending: int  # in the stream, not yet delivered to this consumer
    num_ack_pending: int  # delivered, awaiting acknowledgement
    num_redelivered: int
    delivered_stream_seq: int
    ack_floor_stream_seq: int


class BusMessage:
    """One message from a stream; ``ack()`` it after the work it carries is committed."""

    __slots__ = ("_consumer", "_msg", "data", "headers", "msg_id", "num_delivered", "stream_seq", "subject")

    def __init__(self, msg: Msg, consumer: DurableConsumer | None) -> None:
        self._msg = msg
        self._consumer = consumer
        self.subject: str = msg.subject
        self.data: bytes = msg.data
        self.headers: dict[str, str] = dict(msg.headers or {})
        self.msg_id: str | None = self.headers.get(MSG_ID)
        meta = msg.metadata
        self.stream_seq: int = int(meta.sequence.stream)
        self.num_delivered: int = int(meta.num_delivered)

    @property
    def format(self) -> str:
        return self.headers.get(HEADER_FORMAT, FORMAT_JSON)

    def event(self) -> dict[str, Any]:
        """The JSON body (tracks, alerts, incidents and JSON observations)."""
        try:
            doc = json.loads(self.data)
        except ValueError as exc:
            raise BusFormatError(f"{self.subject} seq {self.stream_seq}: not JSON: {exc}") from None
        if not isinstance(doc, dict):
            raise BusFormatError(f"{self.subject} seq {self.stream_seq}: not a JSON object")
        return doc

    def observation(self) -> Observation:
        """The observation of a JSON observation message."""
        return observation_from_json(self.event())

    def batch(self, identities: IdentityCodes) -> ObservationBatch:
        """The observations of a message as a batch (either format)."""
        if self.format == FORMAT_COLUMNAR:
            try:
                return decode_batch(self.data, identities)
            except BusFormatError as exc:
                raise BusFormatError(f"{self.subject} seq {self.stream_seq}: {exc}") from None
        return ObservationBatch.from_observations([self.observation()], identities)

    def ack(self, *, confirm: bool = True) -> None:
        if self._consumer is not None:
            self._consumer.ack([self], confirm=confirm)

    def __repr__(self) -> str:
        return f"BusMessage({self.subject!r}, seq={self.stream_seq}, id={self.msg_id!r})"


@dataclass(slots=True)
class _Outgoing:
    subject: str
    data: bytes
    headers: dict[str, str]
    done: concurrent.futures.Future[PubAck] | None


# --------------------------------------------------------------------------- the bus


class NatsBus:
    """The JetStream bus. Construct with :func:`open_nats_bus` or ``NatsBus(settings)``."""

    def __init__(self, settings: NatsSettings | None = None) -> None:
        self.settings = settings or NatsSettings()
        self.published = 0
        self.reconnects = 0
        self._loop = asyncio.new_event_loop()
        self._thread = threading.Thread(target=self._loop.run_forever, name="nats-bus", daemon=True)
        self._thread.start()
        self._nc: NatsClient | None = None
        self._js: JetStreamContext | None = None
        self._outbox: deque[_Outgoing] = deque()
        self._outbox_ready: asyncio.Event | None = None
        self._room = threading.BoundedSemaphore(self.settings.outbox_size)
        self._unacked = 0
        self._idle = threading.Condition()
        self._attempt = 0
        self._pump: asyncio.Task[None] | None = None
        self._subs: dict[int, list[NatsSubscription]] = {}
        self._closed = False
        try:
            self._call(self._connect(), timeout=self.settings.connect_deadline_s + 5.0)
        except BaseException:
            self._stop_loop()
            raise

    # ---- loop plumbing
    def _call(self, coro: Coroutine[Any, Any, T], timeout: float | None = None) -> T:
        fut = asyncio.run_coroutine_threadsafe(coro, self._loop)
        try:
            return fut.result(timeout if timeout is not None else self.settings.request_timeout_s + 5.0)
        except concurrent.futures.TimeoutError:
            fut.cancel()
            raise TimeoutError("NATS bus: operation timed out") from None

    async def _acall(self, coro: Coroutine[Any, Any, T]) -> T:
        return await asyncio.wrap_future(asyncio.run_coroutine_threadsafe(coro, self._loop))

    def _stop_loop(self) -> None:
        self._loop.call_soon_threadsafe(self._loop.stop)
        self._thread.join(timeout=5.0)

    @property
    def js(self) -> JetStreamContext:
        if self._js is None:
            raise RuntimeError("NATS bus is not connected")
        return self._js

    # ---- connection
    def _backoff(self, attempt: int) -> float:
        s = self.settings
        return min(s.reconnect_max_s, s.reconnect_base_s * 2.0 ** max(0, attempt - 1)) * (
            0.5 + 0.5 * random.random()
        )

    def _next_server(self, servers: list[Any], info: dict[str, Any]) -> tuple[Any, float]:
        self._attempt += 1
        return servers[0], self._backoff(self._attempt)

    async def _on_disconnect(self) -> None:
        if self._closed:
            return
        log.warning("NATS bus %s: disconnected; reconnecting with backoff", self.settings.url)

    async def _on_reconnect(self) -> None:
        self.reconnects += 1
        self._attempt = 0
        log.info("NATS bus %s: reconnected", self.settings.url)

    async def _on_error(self, exc: Exception) -> None:
        log.debug("NATS bus %s: %s", self.settings.url, exc)

    async def _connect(self) -> None:
        s = self.settings
        # nats-py retries the first connection itself (forever, with max_reconnect_attempts=-1):
        # bound it by the deadline
        try:
            self._nc = await asyncio.wait_for(
                nats.connect(
                    servers=[s.url],
                    name=s.name,
                    connect_timeout=max(1, round(min(2.0, s.connect_deadline_s))),
                    reconnect_time_wait=s.reconnect_base_s,
                    allow_reconnect=True,
                    max_reconnect_attempts=-1,
                    reconnect_to_server_handler=self._next_server,
                    disconnected_cb=self._on_disconnect,
                    reconnected_cb=self._on_reconnect,
                    error_cb=self._on_error,
                ),
                timeout=s.connect_deadline_s,
            )
        except (TimeoutError, OSError, nats.errors.Error) as exc:
            reason = str(exc) or type(exc).__name__
            raise BusUnavailable(
                f"NATS {s.url}: not reachable within {s.connect_deadline_s:g} s ({reason})"
            ) from None
        self._js = self._nc.jetstream(timeout=s.request_timeout_s, publish_async_max_pending=s.max_in_flight)
        for name, subjects in STREAMS.items():
            config = api.StreamConfig(
                name=name,
                subjects=list(subjects),
                storage=api.StorageType.MEMORY if s.memory_storage else api.StorageType.FILE,
                max_age=s.stream_max_age_s,
                duplicate_window=s.duplicate_window_s,
                retention=api.RetentionPolicy.LIMITS,
            )
            try:
                await self._js.add_stream(config)
            except nats.js.errors.BadRequestError:
                await self._js.update_stream(config)
        self._outbox_ready = asyncio.Event()
        self._pump = asyncio.get_running_loop().create_task(self._run_outbox())

    # ---- publishing
    def publish(self, topic: str, event: dict[str, Any], *, msg_id: str | None = None) -> None:
        """Publish a JSON event on ``sw.<topic>`` (the Bus protocol). See the module docstring.

        A topic no stream keeps (``geofences``: a notice for live streams) goes out on core NATS,
        at most once, to the live subscribers (JetStream would refuse it, and resend forever)."""
        subject = topic_subject(topic)
        try:
            stream_for(subject)
        except ValueError:
            data = _dumps(event)

            async def send() -> None:
                assert self._nc is not None
                await self._nc.publish(subject, data)

            self._call(send())
            return
        data = _dumps(event)
        limit = self._payload_limit()
        if len(data) <= limit:
            self.publish_bytes(subject, data, msg_id=msg_id)
            return
        # larger than the server takes in one message: in parts (see split_event)
        for k, part in enumerate(split_event(event, len(data), limit)):
            self.publish_bytes(subject, part, msg_id=None if msg_id is None else f"{msg_id}/{k}")

    def _payload_limit(self) -> int:
        """The largest event body to send as one message: the server's ``max_payload`` less room
        for the headers."""
        server = self._nc.max_payload if self._nc is not None else 1 << 20
        return max(4096, int(server) - 4096)

    def publish_bytes(
        self,
        subject: str,
        data: bytes,
        *,
        msg_id: str | None = None,
        headers: dict[str, str] | None = None,
    ) -> concurrent.futures.Future[PubAck]:
        """Queue one message; the future resolves with the stream's acknowledgement."""
        if self._closed:
            raise RuntimeError("NATS bus is closed")
        # every message carries an id, so a resend after a lost acknowledgement is stored once
        hdr = dict(headers or {})
        hdr[MSG_ID] = msg_id if msg_id is not None else uuid.uuid4().hex
        done: concurrent.futures.Future[PubAck] = concurrent.futures.Future()
        self._submit([_Outgoing(subject, data, hdr, done)])
        return done

    def _submit(self, items: list[_Outgoing]) -> None:
        start = 0
        for i in range(len(items)):
            if not self._room.acquire(blocking=False):
                self._hand_over(items[start:i])
                start = i
                self._room.acquire()  # back-pressure: blocks while outbox_size messages await their ack
        self._hand_over(items[start:])

    def _hand_over(self, items: list[_Outgoing]) -> None:
        if items:
            with self._idle:
                self._unacked += len(items)
            self._loop.call_soon_threadsafe(self._enqueue, items)

    def publish_observations(self, observations: Iterable[Observation], *, source: str) -> int:
        """One JSON message per observation on ``sw.obs.<source>.<sensor>``, id = its observation id."""
        if self._closed:
            raise RuntimeError("NATS bus is closed")
        items = []
        n = 0
        for o in observations:
            n += 1
            data = _dumps(observation_to_json(o))  # the same bytes observation_id() hashes
            headers = {HEADER_FORMAT: FORMAT_JSON, MSG_ID: hashlib.blake2b(data, digest_size=16).hexdigest()}
            items.append(_Outgoing(observation_subject(source, o.sensor_id), data, headers, None))
            if len(items) >= 1000:
                self._submit(items)
                items = []
        if items:
            self._submit(items)
        return n

    def publish_batch(
        self, batch: ObservationBatch, identities: IdentityCodes, *, source: str, batch_id: str
    ) -> int:
        """A columnar batch, one message per sensor (``sw.obs.<source>.<sensor>``), id ``batch_id:sensor``.

        Returns the number of messages. Re-publishing the same ``batch_id`` stores nothing new.
        """
        if len(batch) == 0:
            return 0
        order = np.argsort(batch.sensor_index, kind="stable")
        sensors, starts = np.unique(batch.sensor_index[order], return_index=True)
        bounds = [*starts.tolist(), len(order)]
        for k, sensor in enumerate(sensors.tolist()):
            part = _take(batch, order[bounds[k] : bounds[k + 1]])
            sensor_id = batch.sensor_ids[sensor]
            self.publish_bytes(
                observation_subject(source, sensor_id),
                encode_batch(part, identities),
                msg_id=f"{batch_id}:{sensor_id}",
                headers={HEADER_FORMAT: FORMAT_COLUMNAR},
            )
        return len(sensors)

    def publish_cell(
        self, cell_id: int, data: bytes, *, msg_id: str, handover: bool = False
    ) -> concurrent.futures.Future[PubAck]:
        """A cell message (:mod:`stratowatch.service.cellworker` encodes it): observations routed
        to the cell, or (``handover``) tracks handed over to it. ``msg_id`` makes it idempotent."""
        subject = handover_subject(cell_id) if handover else cell_subject(cell_id)
        return self.publish_bytes(
            subject,
            data,
            msg_id=msg_id,
            headers={HEADER_FORMAT: FORMAT_HANDOVER if handover else FORMAT_COLUMNAR},
        )

    def cells_with_messages(self) -> list[int]:
        """The cells whose subjects hold messages in the SW_CELLS stream (observations or hand-overs)."""

        async def run() -> list[int]:
            info = await self.js.stream_info("SW_CELLS", subjects_filter=f"{PREFIX}.cell.>")
            subjects = info.state.subjects or {}
            return sorted({int(s.split(".")[2]) for s in subjects if s.split(".")[2].isdigit()})

        return self._call(run())

    def flush(self, timeout_s: float = 30.0) -> bool:
        """Wait until every queued publish is acknowledged by its stream. False on timeout."""
        with self._idle:
            return self._idle.wait_for(lambda: self._unacked == 0, timeout=timeout_s)

    @property
    def pending_publishes(self) -> int:
        with self._idle:
            return self._unacked

    def _enqueue(self, items: list[_Outgoing]) -> None:
        self._outbox.extend(items)
        assert self._outbox_ready is not None
        self._outbox_ready.set()

    def _settled(self, item: _Outgoing, ack: PubAck) -> None:
        if item.done is not None and not item.done.done():
            item.done.set_result(ack)
        self.published += 1
        self._room.release()
        with self._idle:
            self._unacked -= 1
            if self._unacked == 0:
                self._idle.notify_all()

    def _failed(self, item: _Outgoing, exc: BaseException) -> None:
        log.error(
            "NATS bus: the server refuses a message on %s (%d bytes): %s", item.subject, len(item.data), exc
        )
        if item.done is not None and not item.done.done():
            item.done.set_exception(exc)
        self._room.release()
        with self._idle:
            self._unacked -= 1
            if self._unacked == 0:
                self._idle.notify_all()

    async def _run_outbox(self) -> None:
        assert self._outbox_ready is not None
        window_size = max(1, self.settings.max_in_flight)
        while True:
            while not self._outbox:
                self._outbox_ready.clear()
                await self._outbox_ready.wait()
            window = [self._outbox.popleft() for _ in range(min(window_size, len(self._outbox)))]
            await self._send_window(window)

    async def _send_window(self, window: list[_Outgoing]) -> None:
        """Send in order; resend from the first unacknowledged one (duplicates are dropped by id)."""
        attempt = 0
        pending = window
        while pending:
            futures: list[asyncio.Future[api.PubAck] | BaseException] = []
            for item in pending:
                try:
                    futures.append(
                        await self.js.publish_async(
                            item.subject,
                            item.data,
                            wait_stall=self.settings.publish_timeout_s,
                            headers=item.headers or None,
                        )
                    )
                except Exception as exc:
                    futures.append(exc)
            waiting = [f for f in futures if not isinstance(f, BaseException)]
            if waiting:  # one timeout for the whole window
                await asyncio.wait(waiting, timeout=self.settings.publish_timeout_s)
            results: list[api.PubAck | BaseException] = []
            for f in futures:
                if isinstance(f, BaseException):
                    results.append(f)
                elif not f.done():
                    f.cancel()  # frees its slot in the client's pending-publish window
                    results.append(TimeoutError("no acknowledgement from the stream"))
                elif f.cancelled():
                    results.append(asyncio.CancelledError())
                elif (error := f.exception()) is not None:
                    results.append(error)
                else:
                    results.append(f.result())
            refused = set()
            for i, r in enumerate(results):  # the server will never take these: fail, never resend
                if isinstance(r, nats.errors.MaxPayloadError | nats.errors.BadSubjectError):
                    self._failed(pending[i], r)
                    refused.add(i)
            if refused:
                pending = [p for i, p in enumerate(pending) if i not in refused]
                results = [r for i, r in enumerate(results) if i not in refused]
            first_bad = next((i for i, r in enumerate(results) if isinstance(r, BaseException)), len(results))
            for item, r in zip(pending[:first_bad], results[:first_bad], strict=True):
                ack = cast(api.PubAck, r)
                self._settled(item, PubAck(ack.stream, int(ack.seq), bool(ack.duplicate)))
            if first_bad == len(results):
                return
            attempt += 1
            delay = self._backoff(attempt)
            log.warning(
                "NATS bus: %d publishes not acknowledged (%s); resending in %.2f s",
                len(pending) - first_bad, results[first_bad], delay,
            )  # fmt: skip
            pending = pending[first_bad:]
            await asyncio.sleep(delay)

    # ---- live subscriptions (Bus protocol)
    def subscribe(self, topics: Iterable[str], maxsize: int = 1000) -> Subscription:
        """A bounded, drop-oldest queue of live ``(topic, event)`` from the given topics."""
        names = frozenset(topics)
        if not names:
            raise ValueError("subscribe to at least one topic (or '*')")
        sub = Subscription(cast(Any, self), names, maxsize)
        # '*' is every event topic, as on the in-process bus; observations are for durable consumers
        subjects = sorted(
            {s for t in names for s in (EVENT_SUBJECTS if t == ALL_TOPICS else (topic_subject(t),))}
        )
        cut = len(PREFIX) + 1

        parts = PartAssembler()

        async def deliver(msg: Msg) -> None:
            try:
                doc = json.loads(msg.data)
            except ValueError:
                return  # a columnar observation batch: not an event
            if isinstance(doc, dict):
                whole = parts.add(msg.subject, doc)
                if whole is not None:
                    sub._put(msg.subject[cut:], whole)

        async def start() -> list[NatsSubscription]:
            assert self._nc is not None
            return [
                await self._nc.subscribe(s, cb=deliver, pending_msgs_limit=max(maxsize, 64) * 4)
                for s in subjects
            ]

        self._subs[id(sub)] = self._call(start())
        return sub

    def has_subscribers(self, topic: str) -> bool:
        """Always True for the topics a stream keeps: other processes may read them at any time."""
        try:
            stream_for(topic_subject(topic))
        except ValueError:
            return bool(self._subs)
        return True

    def _remove(self, sub: Subscription) -> None:
        nsubs = self._subs.pop(id(sub), [])

        async def stop() -> None:
            for s in nsubs:
                with contextlib.suppress(Exception):
                    await s.unsubscribe()

        if nsubs and not self._closed:
            with contextlib.suppress(Exception):
                self._call(stop())

    # ---- durable consumers, replay
    def durable(
        self,
        name: str,
        subject: str = "sw.obs.>",
        *,
        max_ack_pending: int = 1000,
        ack_wait_s: float = 30.0,
        start_seq: int | None = None,
        max_deliver: int = -1,
        remember_acked: int = 100_000,
        reset: bool = False,
    ) -> DurableConsumer:
        """Bind to (creating if new) the durable pull consumer ``name`` on ``subject``.

        A new consumer starts at the stream's first message, or at ``start_seq``; an existing
        one keeps its acknowledged position (settings given here apply to new consumers only).
        ``reset`` deletes an existing one first, so that delivery starts again at ``start_seq``
        (a tracker worker taking a cell over resumes from its snapshot's stream position).
        The consumer remembers the ids of its last ``remember_acked`` acknowledged messages and
        drops them if the server delivers them again (see :attr:`DurableConsumer.suppressed`).
        """
        stream = stream_for(subject)

        async def make() -> JetStreamContext.PullSubscription:
            if reset:
                with contextlib.suppress(nats.js.errors.NotFoundError):
                    await self.js.delete_consumer(stream, name)
            try:
                await self.js.consumer_info(stream, name)
            except nats.js.errors.NotFoundError:
                config = api.ConsumerConfig(
                    durable_name=name,
                    ack_policy=api.AckPolicy.EXPLICIT,
                    ack_wait=ack_wait_s,
                    max_ack_pending=max_ack_pending,
                    max_deliver=max_deliver,
                    filter_subject=subject,
                    deliver_policy=(
                        api.DeliverPolicy.BY_START_SEQUENCE
                        if start_seq is not None
                        else api.DeliverPolicy.ALL
                    ),
                    opt_start_seq=start_seq,
                )
                await self.js.add_consumer(stream, config)
            return await self.js.pull_subscribe_bind(
                durable=name, stream=stream, pending_msgs_limit=max(max_ack_pending, 1) * 2
            )

        return DurableConsumer(self, name, stream, subject, self._call(make()), remember_acked)

    def replay(self, subject: str, start_seq: int = 1, limit: int = 10_000) -> list[BusMessage]:
        """Up to ``limit`` stored messages on ``subject`` from stream sequence ``start_seq`` on."""
        stream = stream_for(subject)

        async def run() -> list[BusMessage]:
            config = api.ConsumerConfig(
                ack_policy=api.AckPolicy.NONE,
                filter_subject=subject,
                deliver_policy=api.DeliverPolicy.BY_START_SEQUENCE,
                opt_start_seq=max(1, start_seq),
                inactive_threshold=30.0,
            )
            psub = await self.js.pull_subscribe(subject, stream=stream, config=config)
            out: list[BusMessage] = []
            try:
                while len(out) < limit:
                    try:
                        msgs = await psub.fetch(min(1000, limit - len(out)), timeout=0.5)
                    except nats.errors.TimeoutError:
                        break
                    out.extend(BusMessage(m, None) for m in msgs)
                    if msgs and msgs[-1].metadata.num_pending == 0:
                        break
            finally:
                with contextlib.suppress(Exception):
                    await psub.unsubscribe()
            return out

        return self._call(run(), timeout=60.0)

    def stream_state(self, stream: str) -> tuple[int, int, int]:
        """(messages, first_seq, last_seq) of a stream."""

        async def run() -> tuple[int, int, int]:
            info = await self.js.stream_info(stream)
            st = info.state
            return int(st.messages), int(st.first_seq), int(st.last_seq)

        return self._call(run())

    # ---- lifetime
    def close(self, flush_timeout_s: float = 5.0) -> None:
        """Flush what is queued (up to ``flush_timeout_s``), close subscriptions and the connection."""
        if self._closed:
            return
        if not self.flush(flush_timeout_s):
            log.warning("NATS bus: closing with %d publishes unacknowledged", self.pending_publishes)
        self._closed = True

        async def shutdown() -> None:
            if self._pump is not None:
                self._pump.cancel()
                with contextlib.suppress(asyncio.CancelledError):
                    await self._pump
            if self._nc is not None:
                with contextlib.suppress(Exception):
                    await self._nc.close()

        with contextlib.suppress(Exception):
            self._call(shutdown(), timeout=10.0)
        self._stop_loop()

    def __enter__(self) -> NatsBus:
        return self

    def __exit__(self, *exc: object) -> None:
        self.close()


class DurableConsumer:
    """A durable pull consumer: ``fetch`` a batch, commit the work, then ``ack`` it."""

    def __init__(
        self,
        bus: NatsBus,
        name: str,
        stream: str,
        subject: str,
        psub: JetStreamContext.PullSubscription,
        remember_acked: int = 100_000,
    ) -> None:
        self.bus = bus
        self.name = name
        self.stream = stream
        self.subject = subject
        self._psub = psub
        self._acked: OrderedDict[str, None] = OrderedDict()
        self.remember_acked = remember_acked
        #: messages the server delivered again although this consumer had acknowledged them
        #: (its acknowledgements are written behind: a server killed just after them forgets
        #: the last ones); they are acknowledged again and not returned.
        self.suppressed = 0

    def fetch(self, batch: int = 100, timeout_s: float = 1.0) -> list[BusMessage]:
        """Up to ``batch`` messages, waiting at most ``timeout_s``; [] when none (or disconnected)."""
        return self.bus._call(
            self._fetch(batch, timeout_s), timeout=timeout_s + self.bus.settings.request_timeout_s + 5.0
        )

    async def afetch(self, batch: int = 100, timeout_s: float = 1.0) -> list[BusMessage]:
        """:meth:`fetch` for a coroutine on any event loop."""
        return await self.bus._acall(self._fetch(batch, timeout_s))

    def ack(self, messages: Sequence[BusMessage], *, confirm: bool = True) -> None:
        """Acknowledge messages (after their work is committed). ``confirm`` waits for the server.

        Raises ``TimeoutError`` when the server does not confirm (e.g. it is restarting): the
        caller acknowledges again later (or the messages come back and are applied idempotently).
        """
        if messages:
            self.bus._call(self._ack(messages, confirm))
            self._remember(messages)

    async def aack(self, messages: Sequence[BusMessage], *, confirm: bool = True) -> None:
        """:meth:`ack` for a coroutine on any event loop."""
        if messages:
            await self.bus._acall(self._ack(messages, confirm))
            self._remember(messages)

    async def _fetch(self, batch: int, timeout_s: float) -> list[BusMessage]:
        try:
            msgs = await self._psub.fetch(batch, timeout=timeout_s)
        except (TimeoutError, nats.errors.TimeoutError):  # nats-py raises either when idle
            return []
        except (nats.errors.ConnectionClosedError, nats.errors.ConnectionReconnectingError) as exc:
            log.warning("consumer %s: %s; retrying after a pause", self.name, exc)
            await asyncio.sleep(min(timeout_s, 0.5))
            return []
        out = [BusMessage(m, self) for m in msgs]
        again = [m for m in out if m.msg_id is not None and m.msg_id in self._acked]
        if again:
            self.suppressed += len(again)
            log.info("consumer %s: %d acknowledged messages delivered again; dropped", self.name, len(again))
            await asyncio.gather(
                *(m._msg.ack_sync(timeout=self.bus.settings.request_timeout_s) for m in again)
            )
            out = [m for m in out if m.msg_id is None or m.msg_id not in self._acked]
        return out

    async def _ack(self, messages: Sequence[BusMessage], confirm: bool) -> None:
        msgs = [m._msg for m in messages]
        if confirm:
            timeout = self.bus.settings.request_timeout_s
            await asyncio.gather(*(m.ack_sync(timeout=timeout) for m in msgs))
        else:
            for m in msgs:
                await m.ack()

    def _remember(self, messages: Sequence[BusMessage]) -> None:
        for m in messages:
            if m.msg_id is not None:
                self._acked[m.msg_id] = None
        while len(self._acked) > self.remember_acked:
            self._acked.popitem(last=False)

    def nak(self, messages: Sequence[BusMessage], delay_s: float | None = None) -> None:
        """Ask for messages to be delivered again (after ``delay_s``)."""

        async def run() -> None:
            for m in messages:
                await m._msg.nak(delay=delay_s)

        if messages:
            self.bus._call(run())

    def state(self) -> ConsumerState:
        async def run() -> ConsumerState:
            info = await self.bus.js.consumer_info(self.stream, self.name)
            return ConsumerState(
                name=self.name,
                num_pending=int(info.num_pending or 0),
                num_ack_pending=int(info.num_ack_pending or 0),
                num_redelivered=int(info.num_redelivered or 0),
                delivered_stream_seq=int(info.delivered.stream_seq or 0) if info.delivered else 0,
                ack_floor_stream_seq=int(info.ack_floor.stream_seq or 0) if info.ack_floor else 0,
            )

        return self.bus._call(run())

    def close(self) -> None:
        """Stop fetching here; the server keeps the consumer and its position."""

        async def run() -> None:
            with contextlib.suppress(Exception):
                await self._psub.unsubscribe()

        with contextlib.suppress(Exception):
            self.bus._call(run())

    def delete(self) -> None:
        """Remove the consumer and its position from the server."""
        self.close()
        self.bus._call(self.bus.js.delete_consumer(self.stream, self.name))


def open_nats_bus(url: str, **settings: Any) -> NatsBus:
    """A connected :class:`NatsBus` for ``nats://host:port`` (streams created when missing)."""
    return NatsBus(NatsSettings(url=url, **settings))


__all__ = [
    "STREAMS",
    "BusFormatError",
    "BusMessage",
    "BusUnavailable",
    "ConsumerState",
    "DurableConsumer",
    "NatsBus",
    "NatsSettings",
    "PubAck",
    "batch_extra",
    "cell_filter",
    "cell_subject",
    "decode_batch",
    "encode_batch",
    "handover_subject",
    "observation_id",
    "observation_subject",
    "open_nats_bus",
    "stream_for",
    "topic_subject",
]
