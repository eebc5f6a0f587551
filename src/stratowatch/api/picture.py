"""The live picture: the current tracks held in memory, filtered with numpy, served as ready JSON.

``GET /api/v1/tracks`` is the API's hot path (a map polls it; many operators poll it). Reading
1,000 tracks back from the store and encoding them costs tens of milliseconds per request, so the
API keeps its own copy of the live (not ended) tracks:

* the pipeline publishes every step's reported tracks on the bus topic ``tracks`` — exactly the
  live set after that step (tracks it no longer reports are ended in the store) — and
  :class:`LivePicture` replaces its copy with each such event; tracker workers over cells (the
  ``track`` role) publish one event per cell (with ``"cell"``), and the copy is the union of
  each cell's latest (a track handed between two cells counted once, its newest state);
* until an event arrives, and whenever none has arrived for ``store_ttl_s``, the copy is re-read
  from the store (tracks whose status is not ``ended``), at most once per ``store_ttl_s``, in the
  background (requests are served from the copy meanwhile).

Each track is encoded to JSON once per update; a request selects rows with array masks (status,
class, altitude band, box, time) and joins the encoded rows of its page. Identity regexes test
the identities of the rows the masks left.
"""

from __future__ import annotations

import asyncio
import contextlib
import json
import logging
import re
import threading
import time
from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from typing import Any

import numpy as np
import numpy.typing as npt
from starlette.concurrency import run_in_threadpool

from stratowatch.api.convert import json_safe, track_json
from stratowatch.service.bus import BusClosed
from stratowatch.store._sql import scope

log = logging.getLogger(__name__)

STATUS_CODES = {"tentative": 0, "confirmed": 1, "coasting": 2, "ended": 3}
CLASS_CODES = {"unknown": 0, "balloon": 1, "aircraft": 2}
_UNCLASSIFIED = -1


@dataclass(frozen=True, slots=True)
class _Snapshot:
    """One consistent copy of the live tracks, sorted by track id."""

    track_id: npt.NDArray[np.int64]
    status: npt.NDArray[np.int8]
    label: npt.NDArray[np.int8]
    lat_deg: npt.NDArray[np.float64]
    lon_deg: npt.NDArray[np.float64]
    alt_m: npt.NDArray[np.float64]
    time_s: npt.NDArray[np.float64]
    identities: list[list[str]]
    encoded: list[bytes]
    updated_s: float

    @classmethod
    def build(cls, docs: Sequence[Mapping[str, Any]]) -> _Snapshot:
        live = [d for d in docs if d.get("status") != "ended"]
        live.sort(key=lambda d: int(d["track_id"]))

        def col(key: str) -> npt.NDArray[np.float64]:
            return np.array([np.nan if d.get(key) is None else d[key] for d in live], dtype=np.float64)

        return cls(
            track_id=np.array([int(d["track_id"]) for d in live], dtype=np.int64),
            status=np.array([STATUS_CODES.get(str(d.get("status")), 0) for d in live], dtype=np.int8),
            label=np.array(
                [
                    CLASS_CODES.get(str(d["classification"]["label"]), 0)
                    if d.get("classification")
                    else _UNCLASSIFIED
                    for d in live
                ],
                dtype=np.int8,
            ),
            lat_deg=col("lat_deg"),
            lon_deg=col("lon_deg"),
            alt_m=col("alt_m"),
            time_s=col("time_s"),
            identities=[list(d.get("identities") or ()) for d in live],
            encoded=[_encode(d) for d in live],
            updated_s=time.monotonic(),
        )


def _encode(doc: Mapping[str, Any]) -> bytes:
    try:
        return json.dumps(doc, separators=(",", ":"), allow_nan=False).encode()
    except ValueError:  # a NaN somewhere: null it
        return json.dumps(json_safe(doc), separators=(",", ":")).encode()


EMPTY = _Snapshot.build([])


class LivePicture:
    """The API's in-memory copy of the live tracks (see the module docstring)."""

    def __init__(self, pipeline: Any, *, store_ttl_s: float = 1.0, audience: str = "") -> None:
        self.pipeline = pipeline
        self.store_ttl_s = store_ttl_s
        #: The picture this copy follows: ``""`` the node's own, else a partner's (see sharing).
        self.audience = audience
        self._snapshot = EMPTY
        #: the tracks of the latest event per cell (None: a whole-picture event)
        self._cells: dict[int | None, list[Mapping[str, Any]]] = {}
        self._from_bus_s = -float("inf")  # monotonic time of the last bus event
        self._from_store_s = -float("inf")
        self._refresh_lock = threading.Lock()
        self._task: asyncio.Task[None] | None = None
        self._refresh: asyncio.Future[None] | None = None
        self._subscription: Any = None
        self.bus_updates = 0
        self.store_refreshes = 0

    # ------------------------------------------------------------------ updates

    def start(self) -> None:
        """Follow the bus's ``tracks`` topic (call on the serving event loop)."""
        bus = getattr(self.pipeline, "bus", None)
        if bus is None or self._task is not None:
            return
        self._subscription = bus.subscribe(["tracks"], maxsize=16)  # every picture's events pass by
        self._task = asyncio.get_running_loop().create_task(self._follow())

    async def stop(self) -> None:
        if self._subscription is not None:
            self._subscription.close()
        if self._task is not None:
            self._task.cancel()
            with contextlib.suppress(asyncio.CancelledError):
                await self._task
            self._task = None

    async def _follow(self) -> None:
        sub = self._subscription
        while True:
            try:
                _, event = await sub.get()
            except BusClosed:
                return
            if str(event.get("audience", "")) != self.audience:
                continue
            events = [event]
            while (newer := sub.get_nowait()) is not None:  # only the latest picture matters
                if str(newer[1].get("audience", "")) == self.audience:
                    events.append(newer[1])
            docs = self._merge(events)
            try:
                snapshot = await run_in_threadpool(_Snapshot.build, docs)
            except (KeyError, TypeError, ValueError):
                log.exception("tracks event not understood; the picture keeps its last state")
                continue
            self._snapshot = snapshot
            self._from_bus_s = snapshot.updated_s
            self.bus_updates += 1

    def _merge(self, events: Sequence[Mapping[str, Any]]) -> list[Mapping[str, Any]]:
        """The picture after ``events``: a whole-picture event (the single process) replaces it;
        a cell's event (tracker workers over cells: ``"cell"``) replaces that cell's part."""
        for ev in events:
            cell = ev.get("cell")
            if cell is None:
                self._cells = {None: list(ev.get("tracks") or ())}
            else:
                self._cells.pop(None, None)
                self._cells[int(cell)] = list(ev.get("tracks") or ())
        if len(self._cells) == 1:
            return next(iter(self._cells.values()))
        latest: dict[Any, Mapping[str, Any]] = {}  # a track handed between cells: its newest state
        for docs in self._cells.values():
            for d in docs:
                old = latest.setdefault(d.get("track_id"), d)
                if old is not d and float(d.get("time_s", 0.0)) > float(old.get("time_s", 0.0)):
                    latest[d.get("track_id")] = d
        return list(latest.values())

    def _refresh_from_store(self) -> None:
        with self._refresh_lock:
            now = time.monotonic()
            if now - max(self._from_store_s, self._from_bus_s) < self.store_ttl_s:
                return  # another request refreshed it meanwhile
            with scope(self.audience):
                tracks = self.pipeline.store.tracks(limit=None)
            snapshot = _Snapshot.build([track_json(t) for t in tracks if t.status.name != "ENDED"])
            if self._from_bus_s < now:  # a bus event during the read wins
                self._snapshot = snapshot
            self._from_store_s = time.monotonic()
            self.store_refreshes += 1

    async def current(self) -> _Snapshot:
        """The picture. When the bus has been quiet for ``store_ttl_s`` it is re-read from the
        store: in the background while the current copy is served (a request never waits for a
        refresh), except before the first load and with ``store_ttl_s == 0`` (every request
        reads the store; tests)."""
        now = time.monotonic()
        if now - max(self._from_store_s, self._from_bus_s) < self.store_ttl_s:
            return self._snapshot
        loaded = self._from_store_s > -float("inf") or self._from_bus_s > -float("inf")
        if not loaded or self.store_ttl_s <= 0:
            await run_in_threadpool(self._refresh_from_store)
        elif self._refresh is None or self._refresh.done():
            self._refresh = asyncio.get_running_loop().create_task(
                run_in_threadpool(self._refresh_from_store)
            )
        return self._snapshot

    # ------------------------------------------------------------------ queries

    async def query(
        self,
        *,
        status: str | None = None,
        cls: str | None = None,
        min_alt_m: float | None = None,
        max_alt_m: float | None = None,
        bbox: tuple[float, float, float, float] | None = None,
        since_s: float | None = None,
        identity_regex: str | None = None,
        limit: int = 100,
        offset: int = 0,
    ) -> tuple[list[bytes], int]:
        """The encoded tracks of one page, and how many match (same filters as the store's)."""
        snap = await self.current()
        keep = np.ones(snap.track_id.shape[0], dtype=bool)
        if status is not None:
            keep &= snap.status == STATUS_CODES[status]
        if cls is not None:
            code = CLASS_CODES[cls]
            keep &= (snap.label == code) | (snap.label == _UNCLASSIFIED) if code == 0 else snap.label == code
        if min_alt_m is not None:
            keep &= snap.alt_m >= min_alt_m
        if max_alt_m is not None:
            keep &= snap.alt_m <= max_alt_m
        if since_s is not None:
            keep &= snap.time_s >= since_s
        if bbox is not None:
            lat0, lon0, lat1, lon1 = bbox
            keep &= (snap.lat_deg >= lat0) & (snap.lat_deg <= lat1)
            if lon0 <= lon1:
                keep &= (snap.lon_deg >= lon0) & (snap.lon_deg <= lon1)
            else:  # across the antimeridian
                keep &= (snap.lon_deg >= lon0) | (snap.lon_deg <= lon1)
        rows = np.flatnonzero(keep)
        if identity_regex is not None:
            pattern = re.compile(identity_regex)
            rows = np.array(
                [i for i in rows.tolist() if any(pattern.search(x) for x in snap.identities[i])],
                dtype=np.int64,
            )
        page = rows[offset : offset + limit].tolist()
        return [snap.encoded[i] for i in page], int(rows.shape[0])


class Pictures:
    """One :class:`LivePicture` per audience, made on first use (on the serving event loop)."""

    def __init__(self, pipeline: Any, *, store_ttl_s: float) -> None:
        self.pipeline = pipeline
        self.store_ttl_s = store_ttl_s
        self.own = LivePicture(pipeline, store_ttl_s=store_ttl_s)
        self._by_audience: dict[str, LivePicture] = {"": self.own}
        self._started = False

    def start(self) -> None:
        self._started = True
        for picture in self._by_audience.values():
            picture.start()

    async def stop(self) -> None:
        self._started = False
        for picture in self._by_audience.values():
            await picture.stop()

    def get(self, audience: str) -> LivePicture:
        picture = self._by_audience.get(audience)
        if picture is None:
            picture = self._by_audience[audience] = LivePicture(
                self.pipeline, store_ttl_s=self.store_ttl_s, audience=audience
            )
            if self._started:
                picture.start()
        return picture


def page_bytes(encoded: Sequence[bytes], total: int, limit: int, offset: int) -> bytes:
    """``{"items": [...], "total", "limit", "offset"}`` from already encoded items."""
    return b"".join(
        (b'{"items":[', b",".join(encoded), f'],"total":{total},"limit":{limit},"offset":{offset}}}'.encode())
    )
