"""Federation: pull partner nodes' tracks and fuse them with the local picture.

Each partner runs its own node. A node exchanges *tracks* only, over its peers' authenticated
HTTP API: a :class:`PeerLink` per ``[[federation.peers]]`` entry pulls
``GET {url}/api/v1/tracks`` (paged) with the key that peer issued to this node (``X-API-Key``),
verifying its TLS certificate with ``ca_file``. The peer answers with the picture it keeps for
this node's partner, rebuilt from only the observations it releases to it, so each side sends
only what its own rules release to the other. A failing link retries with exponential back-off
(up to ``federation.max_backoff_s``) and says why in its status.

:class:`Federation` follows the local pictures on the bus (the node's own, audience ``""``, and
the ones it keeps for partners), and every ``federation.period_s`` fuses the peers' tracks into
the own picture with :mod:`stratowatch.sharing.fusion` (association, covariance intersection,
sticky global ids). A partner knows this node's tracks by the ids of the picture kept for it, so
the node names its own contributions by those (matched with :func:`fusion.aliases`): both nodes
then name a shared balloon identically.

The fused picture is an output only: it never feeds back into a tracker, so repeated fusion
cannot count any information twice.
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
import math
import ssl
import threading
import time
from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass, field
from typing import Any

import httpx
import numpy as np

from stratowatch.config import FederationSettings, PeerSettings, Settings
from stratowatch.sharing import fusion
from stratowatch.sharing.fusion import GlobalIds, TrackSet

log = logging.getLogger(__name__)

#: Track statuses that take part in fusion (tentative tracks are often clutter).
FUSED_STATUSES = frozenset({"confirmed", "coasting"})
#: Page size of the pull.
PAGE = 1000


#: Where the global-id table is kept in the store.
IDS_STATE_KEY = "federation.global_ids"


class PeerError(RuntimeError):
    """A peer answered something unusable; the message names the URL."""


# --------------------------------------------------------------------------- one peer


@dataclass
class LinkStatus:
    partner: str
    url: str
    state: str = "starting"  # starting | up | down
    polls: int = 0
    failures: int = 0  # consecutive
    tracks: int = 0
    bytes_received: int = 0
    last_ok_s: float | None = None  # wall clock
    last_error: str | None = None
    retry_in_s: float | None = None

    def json(self) -> dict[str, Any]:
        return {
            "partner": self.partner,
            "url": self.url,
            "state": self.state,
            "polls": self.polls,
            "failures": self.failures,
            "tracks": self.tracks,
            "bytes_received": self.bytes_received,
            "last_ok_s": self.last_ok_s,
            "last_error": self.last_error,
            "retry_in_s": self.retry_in_s,
        }


class PeerLink:
    """Pulls one peer's tracks every ``period_s``, reconnecting with back-off."""

    def __init__(
        self,
        peer: PeerSettings,
        *,
        ca_file: str | None = None,
        max_backoff_s: float = 30.0,
        transport: httpx.AsyncBaseTransport | None = None,
    ) -> None:
        self.peer = peer
        self.max_backoff_s = max_backoff_s
        self.status = LinkStatus(peer.partner, peer.url)
        self.tracks: list[dict[str, Any]] = []
        self.updated = asyncio.Event()
        headers = {"accept": "application/json", "user-agent": "stratowatch-federation"}
        if peer.api_key:
            headers["X-API-Key"] = peer.api_key
        verify: ssl.SSLContext | bool = True
        if ca_file:
            try:
                verify = ssl.create_default_context(cafile=ca_file)
            except (OSError, ssl.SSLError) as exc:
                raise PeerError(f"federation peer {peer.partner}: ca_file {ca_file}: {exc}") from None
        self._client = httpx.AsyncClient(
            base_url=peer.url,
            headers=headers,
            verify=verify,
            timeout=peer.timeout_s,
            transport=transport,
            follow_redirects=False,
        )

    async def fetch(self) -> list[dict[str, Any]]:
        """Every live track the peer releases to this node (all pages)."""
        out: list[dict[str, Any]] = []
        offset = 0
        while True:
            where = f"{self.peer.url}/api/v1/tracks?limit={PAGE}&offset={offset}"
            resp = await self._client.get("/api/v1/tracks", params={"limit": PAGE, "offset": offset})
            self.status.bytes_received += len(resp.content)
            if resp.status_code != 200:
                detail = resp.text[:200].replace("\n", " ")
                raise PeerError(f"{where}: HTTP {resp.status_code}: {detail}")
            try:
                body = resp.json()
                items, total = body["items"], int(body["total"])
                if not isinstance(items, list):
                    raise TypeError("items is not a list")
            except (ValueError, KeyError, TypeError) as exc:
                raise PeerError(f"{where}: not a page of tracks ({exc})") from None
            out.extend(d for d in items if isinstance(d, dict))
            offset += len(items)
            if not items or offset >= total:
                return out

    async def poll_once(self) -> bool:
        """One pull; updates ``tracks`` and the status. True when it worked."""
        st = self.status
        st.polls += 1
        try:
            tracks = await self.fetch()
        except (httpx.HTTPError, PeerError, OSError) as exc:
            msg = str(exc) or type(exc).__name__
            if isinstance(exc, httpx.HTTPError) and not isinstance(exc, httpx.HTTPStatusError):
                msg = f"{self.peer.url}: {type(exc).__name__}: {msg}"
            if st.state != "down" or st.last_error != msg:
                log.warning("federation peer %s: %s", self.peer.partner, msg)
            st.state, st.last_error = "down", msg
            st.failures += 1
            return False
        if st.state != "up":
            log.info("federation peer %s: up (%d tracks)", self.peer.partner, len(tracks))
        self.tracks = tracks
        st.state, st.failures, st.tracks = "up", 0, len(tracks)
        st.last_ok_s, st.last_error = time.time(), None
        self.updated.set()
        return True

    def backoff_s(self) -> float:
        """The wait before the next attempt: the period when up, doubling per failure when down."""
        k = self.status.failures
        if k == 0:
            return self.peer.period_s
        return float(min(self.peer.period_s * 2.0 ** min(k, 30), self.max_backoff_s))

    async def run(self) -> None:
        while True:
            await self.poll_once()
            wait = self.backoff_s()
            self.status.retry_in_s = wait if self.status.failures else None
            await asyncio.sleep(wait)

    async def close(self) -> None:
        await self._client.aclose()


# --------------------------------------------------------------------------- the fused picture


def track_set(
    docs: Sequence[Mapping[str, Any]], node: str, velocity_sigma_mps: float
) -> tuple[TrackSet, list[Mapping[str, Any]]]:
    """A fusion table from tracks in their JSON form (the ones that take part), and those docs.

    Tracks with a missing or non-finite position are left out (they cannot be fused)."""
    keep = [
        d
        for d in docs
        if d.get("status") in FUSED_STATUSES
        and all(isinstance(d.get(k), (int, float)) for k in ("lat_deg", "lon_deg", "alt_m", "time_s"))
    ]
    if not keep:
        return TrackSet.empty(), []

    def col(key: str, default: float = math.nan) -> np.ndarray:
        return np.array([d.get(key, default) for d in keep], dtype=np.float64)

    def vec(key: str, default: float) -> np.ndarray:
        return np.array(
            [[default if v is None else v for v in (d.get(key) or (default,) * 3)] for d in keep], np.float64
        ).reshape(len(keep), 3)

    lat, lon, alt, t = col("lat_deg"), col("lon_deg"), col("alt_m"), col("time_s")
    first = col("first_time_s", 0.0)
    vel = np.nan_to_num(vec("velocity_enu_mps", 0.0))
    sig = vec("position_sigma_m", 1000.0)
    sig = np.where(np.isfinite(sig) & (sig > 0), sig, 1000.0)
    vsig = (
        vec("velocity_sigma_mps", velocity_sigma_mps)
        if any("velocity_sigma_mps" in d for d in keep)
        else None
    )
    if vsig is not None:
        vsig = np.where(np.isfinite(vsig) & (vsig > 0), vsig, velocity_sigma_mps)
    ok = np.isfinite(lat) & np.isfinite(lon) & np.isfinite(alt) & np.isfinite(t)
    rows = np.flatnonzero(ok)
    ids = np.array([int(d["track_id"]) for d in keep], dtype=np.int64)
    table = TrackSet.from_geodetic(
        [node],
        ids[rows],
        t[rows],
        first[rows],
        lat[rows],
        lon[rows],
        alt[rows],
        vel[rows],
        sig[rows],
        vsig[rows] if vsig is not None else np.full(3, velocity_sigma_mps),
    )
    return table, [keep[i] for i in rows.tolist()]


@dataclass
class FusedPicture:
    """One fusion's result as JSON-ready rows (sorted by global id) with its epoch."""

    epoch_s: float | None = None
    items: list[dict[str, Any]] = field(default_factory=list)
    fused_s: float | None = None  # wall clock


class Federation:
    """The links to every peer, the local pictures, and the fused common picture (module doc)."""

    def __init__(
        self,
        settings: Settings,
        *,
        bus: Any = None,
        store: Any = None,
        transport_for: Callable[[PeerSettings], httpx.AsyncBaseTransport | None] | None = None,
    ) -> None:
        self.settings = settings
        self.cfg: FederationSettings = settings.federation
        self.node = settings.node.partner
        self.bus, self.store = bus, store
        self.links = [
            PeerLink(
                p,
                ca_file=str(settings.path(p.ca_file)) if p.ca_file else None,
                max_backoff_s=self.cfg.max_backoff_s,
                transport=transport_for(p) if transport_for else None,
            )
            for p in self.cfg.peers
        ]
        self.ids = GlobalIds()
        if store is not None:
            blob = store.load_state(IDS_STATE_KEY)
            if blob:
                self.ids.restore(blob)
        self.picture = FusedPicture()
        self.fusions = 0
        self._local: dict[str, list[dict[str, Any]]] = {}  # audience -> its live tracks (JSON)
        self._lock = threading.Lock()
        self._tasks: list[asyncio.Task[None]] = []
        self._subscription: Any = None

    # ------------------------------------------------------------------ local pictures

    def set_local(self, audience: str, tracks: Sequence[Mapping[str, Any]]) -> None:
        """The live tracks of the local picture of ``audience`` (``""``: the node's own)."""
        with self._lock:
            self._local[audience] = [dict(t) for t in tracks]

    def _load_from_store(self) -> None:
        from stratowatch.service.serialize import track_to_json

        if self.store is None:
            return
        by_audience: dict[str, list[dict[str, Any]]] = {}
        for t in self.store.tracks(limit=None):
            if t.status.name != "ENDED":
                by_audience.setdefault(getattr(t, "audience", ""), []).append(track_to_json(t))
        with self._lock:
            for audience, docs in by_audience.items():
                self._local.setdefault(audience, docs)

    async def _follow(self) -> None:
        from stratowatch.service.bus import BusClosed

        sub = self._subscription
        while True:
            try:
                first = await sub.get()
            except BusClosed:
                return
            events = [first]
            while (more := sub.get_nowait()) is not None:
                events.append(more)
            latest: dict[str, list[dict[str, Any]]] = {}
            for _, event in events:  # the newest picture of each audience
                latest[str(event.get("audience", ""))] = list(event.get("tracks") or ())
            for audience, docs in latest.items():
                self.set_local(audience, docs)

    # ------------------------------------------------------------------ fusion

    def fuse_now(self) -> FusedPicture:
        """Fuse the peers' latest tracks into the own picture (see the module docstring)."""
        cfg = self.cfg
        with self._lock:
            local = {a: list(d) for a, d in self._local.items()}
        own, own_docs = track_set(local.get("", []), self.node, cfg.velocity_sigma_mps)
        remote = []
        for link in self.links:
            docs = [d for d in link.tracks if _released_to(d, self.node)]
            table, kept = track_set(docs, link.peer.partner, cfg.velocity_sigma_mps)
            remote.append((link.peer.partner, table, kept))
        times = [own.time_s] + [table.time_s for _, table, _ in remote]
        if not any(t.size for t in times):
            self.picture = FusedPicture(epoch_s=None, items=[], fused_s=time.time())
            return self.picture
        # the newest state anywhere; a picture that stopped (a node whose feed ended or stalls)
        # goes stale and drops out after stale_s
        epoch = float(max(t.max() for t in times if t.size))
        q = cfg.process_noise
        own = own.take(np.flatnonzero(own.time_s >= epoch - cfg.stale_s))
        own = self._named_for_partners(own, local, epoch)
        fused = fusion.start(own, self.node, epoch, q)
        for partner, table, _ in remote:
            fresh = np.flatnonzero(table.time_s >= epoch - cfg.stale_s)
            fused = fusion.fuse(
                fused,
                table.take(fresh),
                partner,
                q,
                gate_probability=cfg.gate_probability,
                criterion=cfg.criterion,
            )
        gids = self.ids.assign(fused)
        if self.store is not None:
            self.store.save_state(IDS_STATE_KEY, self.ids.snapshot())
        docs_by_node: dict[str, dict[int, Mapping[str, Any]]] = {
            self.node: {int(d["track_id"]): d for d in own_docs}
        }
        for partner, _, kept in remote:
            docs_by_node[partner] = {int(d["track_id"]): d for d in kept}
        picture = FusedPicture(
            epoch_s=epoch, items=_rows(fused, gids, docs_by_node, self.node), fused_s=time.time()
        )
        self.picture = picture
        self.fusions += 1
        return picture

    def _named_for_partners(
        self, own: TrackSet, local: Mapping[str, Sequence[Mapping[str, Any]]], epoch: float
    ) -> TrackSet:
        """The own tracks named as the peers know them: by their ids in the picture this node
        keeps for the peer (first peer in configuration order with a match), else their own."""
        if not len(own):
            return own
        key, first = own.key.copy(), own.first_s.copy()
        named = np.zeros(len(own), dtype=bool)
        for link in self.links:
            docs = local.get(link.peer.partner)
            if not docs:
                continue
            view, _ = track_set(docs, self.node, self.cfg.velocity_sigma_mps)
            i_own, i_view = fusion.aliases(
                own, view, epoch, self.cfg.process_noise, gate_probability=self.cfg.gate_probability
            )
            take = ~named[i_own]
            i_own, i_view = i_own[take], i_view[take]
            key[i_own], first[i_own] = view.key[i_view], view.first_s[i_view]
            named[i_own] = True
        return own.renamed(key, first)

    # ------------------------------------------------------------------ running

    def start(self) -> None:
        """Follow the bus and run the links and the fusion loop (call on the serving loop)."""
        if self._tasks:
            return
        loop = asyncio.get_running_loop()
        if self.bus is not None:
            self._subscription = self.bus.subscribe(["tracks"], maxsize=64)
            self._tasks.append(loop.create_task(self._follow()))
        for link in self.links:
            self._tasks.append(loop.create_task(link.run()))
        self._tasks.append(loop.create_task(self._fuse_loop()))

    async def _fuse_loop(self) -> None:
        if self.store is not None:
            await asyncio.to_thread(self._load_from_store)
        while True:
            try:
                await asyncio.to_thread(self.fuse_now)
            except Exception:  # one bad fusion must not end federation: log it and go on
                log.exception("federation: fusion failed")
            await asyncio.sleep(self.cfg.period_s)

    async def stop(self) -> None:
        if self._subscription is not None:
            self._subscription.close()
        for task in self._tasks:
            task.cancel()
        for task in self._tasks:
            with contextlib.suppress(asyncio.CancelledError, Exception):
                await task
        self._tasks.clear()
        for link in self.links:
            await link.close()

    def peers(self) -> list[dict[str, Any]]:
        return [link.status.json() for link in self.links]


def _released_to(doc: Mapping[str, Any], partner: str) -> bool:
    """Does the track's label (absent: PUBLIC) release it to ``partner``? A peer should send
    nothing else; what it sends anyway is not used."""
    label = doc.get("releasable_to")
    return label is None or "PUBLIC" in label or partner in label


def _rows(
    fused: fusion.Fused, gids: np.ndarray, docs: Mapping[str, Mapping[int, Mapping[str, Any]]], node: str
) -> list[dict[str, Any]]:
    """The JSON rows of a fused picture (the output edge: one dict per fused track)."""
    state = fusion.geodetic_state(fused.x, fused.P)
    lat, lon, alt = state["lat_deg"].tolist(), state["lon_deg"].tolist(), state["alt_m"].tolist()
    vel, sig, vsig = (
        state["velocity_enu_mps"].tolist(),
        state["position_sigma_m"].tolist(),
        state["velocity_sigma_mps"].tolist(),
    )
    keys, ids, times, firsts = (
        fused.key.tolist(),
        fused.track_id.tolist(),
        fused.time_c.tolist(),
        fused.first_c.tolist(),
    )
    out = []
    for i in np.argsort(gids, kind="stable").tolist():
        contributors = []
        label = None
        for k, name in enumerate(fused.nodes):
            if not keys[i][k]:
                continue
            doc = docs.get(name, {}).get(ids[i][k], {})
            cls = doc.get("classification") or None
            if label is None and cls:
                label = cls.get("label")
            contributors.append(
                {
                    "node": name,
                    "local": name == node,
                    "track_id": ids[i][k],
                    "name": keys[i][k],
                    "time_s": times[i][k],
                    "first_time_s": firsts[i][k],
                    "status": doc.get("status"),
                    "sensors": list(doc.get("sensors") or ()),
                    "identities": list(doc.get("identities") or ()),
                    "class": cls.get("label") if cls else None,
                }
            )
        out.append(
            {
                "global_id": str(gids[i]),
                "time_s": fused.epoch_s,
                "lat_deg": lat[i],
                "lon_deg": lon[i],
                "alt_m": alt[i],
                "velocity_enu_mps": vel[i],
                "position_sigma_m": sig[i],
                "velocity_sigma_mps": vsig[i],
                "first_time_s": min(c["first_time_s"] for c in contributors),
                "class": label,
                "nodes": [c["node"] for c in contributors],
                "contributors": contributors,
            }
        )
    return out
