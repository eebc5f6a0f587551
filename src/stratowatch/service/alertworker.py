"""The alert role: geofence alerts and incidents over the merged picture of the tracker workers.

``stratowatch serve --role alert`` runs :func:`run_alert_role`. In a scaled-out deployment the
tracker workers over cells (:mod:`stratowatch.service.cellworker`) only track; after each
committed cell step they publish the cell's tracks on ``sw.tracks`` (stream ``SW_TRACKS``)::

    {"time_s", "audience": "", "cell", "tracks": [track_json, ...], "ended": [id, ...],
     "handed": [id, ...]}

An :class:`AlertWorker` merges those into one picture of the node and runs the
:class:`~stratowatch.alerts.AlertEngine` over it, as the single-process pipeline does:

**One active worker.** The rules need the whole picture ("potential second incident",
``track_lost``), so one alert worker is active at a time; others stand by. The active one holds
the lease of the reserved cell :data:`LEASE_CELL` in the store's ``cell_leases`` (the tracker
workers' table; their cells are never negative), renewed every ``[scale] lease_s / 3``; a
standby claims it once it has expired.

**The merged picture.** Per track id, its latest state (the later ``time_s`` wins) and the cell
that reported it. A cell event replaces that cell's part: its tracks are taken, ``ended`` ids and
ids the cell no longer reports are dropped, ``handed`` ids stay (with their last state) until they
reappear in the destination cell's event (a hand-over must not look like a track that vanished:
that would be ``track_lost``); one never reported again goes after ``2 * lease_s`` of wall-clock
time and ``[alerts] lost_after_s`` of data time (until then it coasts, and the rules judge it).
Only the cell that holds a track may end or hand it over, so a late event of the source cell
cannot undo the destination's report. A whole-picture event (no ``cell``: the ``all`` role's)
replaces everything. Only the node's own picture (audience ``""``) is used. Events split into
parts (``part``/``parts``) are put together first.

**Predictions.** The latest prediction of each track comes from ``sw.predictions`` (the predict
role and the ``all`` role publish every payload they store) through a second durable consumer, so
no store query per step: only the part the rules read (``arrivals``) is kept, and dropped with
its track. Both subjects are in one stream, so the two batches are applied in stream order.
Positions of both consumers are in the snapshot, so nothing is read twice or skipped.

**Per fetched batch** (:meth:`AlertWorker.run_once`):

1. take the predictions fetched, then the track events in stream order into the picture;
   evaluate the rules whenever the picture's data time has moved ``pipeline.step_s`` past the
   last evaluation (a backlog is evaluated step by step), and once more at the end of the batch;
2. before evaluating, take in what operators did through the API workers: each active incident is
   re-read from the store, and a later status (``tracking``, ``resolved``), new history entries
   and acknowledgements are merged into the incident book (a resolved incident stays resolved);
3. each alert and incident is marked as the pipeline marks the node's own (audience ``""``, label
   the meet of its tracks' labels and the geofence's, originator ``[node] partner``), merged once
   more with the stored row (an operator's change made meanwhile is kept), written to the store,
   published on ``alerts``/``incidents`` and notified (``[alerts]`` webhook / MQTT, and the log);
4. the snapshot (engine and incident book, merged picture, predictions, both stream positions) is
   committed under ``alerts.worker`` with :meth:`~stratowatch.store.base.Store.commit_cell` for
   the reserved cell, i.e. only while this worker holds the lease (fencing);
5. **then** both batches are acknowledged.

A worker taking over restores the snapshot and re-creates both durable consumers at the
snapshot's positions + 1: what was committed is not evaluated again (no alert raised twice) and
what was not is delivered again (none lost). A worker that dies between writing an alert and
committing the snapshot is replayed by its successor from the same book and the same events, so
the same alert ids and incident numbers are written again (the rows are replaced, not
duplicated); only the bus event and the notification of that step may repeat. Incident ids keep
the node's prefix (``INC-0001`` ...) and come from the restored book; a first worker with no
snapshot numbers after the highest such id already stored.
"""

from __future__ import annotations

import contextlib
import logging
import math
import os
import pickle
import socket
import threading
import time
import uuid
from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass, replace
from typing import Any

import numpy as np
import numpy.typing as npt

from stratowatch.alerts import AlertEngine
from stratowatch.alerts.incidents import ACTIVE, IncidentBook
from stratowatch.alerts.notify import Notifier
from stratowatch.config import ConfigError, Settings
from stratowatch.model import Alert, Incident, Track
from stratowatch.service.serialize import alert_to_json, incident_to_json, track_from_json
from stratowatch.sharing.labels import meet, meet_all

log = logging.getLogger(__name__)

IntArray = npt.NDArray[np.int64]

#: The reserved cell id whose lease makes an alert worker the active one.
LEASE_CELL = -1
STATE_KEY = "alerts.worker"
STATE_VERSION = 1
CONSUMER = "sw-alert"
PREDICTIONS_CONSUMER = "sw-alert-predictions"
TRACKS_SUBJECT = "sw.tracks"
PREDICTIONS_SUBJECT = "sw.predictions"
#: the incident prefix of the node's own picture (as the pipeline's)
PREFIX = "INC"
GEOFENCES_EVERY_S = 30.0
#: the "cell" of the tracks of a whole-picture event
WHOLE = -(2**62)
#: at most this many incomplete split events are kept
MAX_PENDING_PARTS = 16


@dataclass(slots=True)
class AlertStats:
    events: int = 0
    predictions: int = 0
    evaluations: int = 0
    alerts: int = 0
    incidents: int = 0
    operator_changes: int = 0
    commits: int = 0
    activations: int = 0
    takeovers: int = 0
    leases_lost: int = 0
    resyncs: int = 0


@dataclass(slots=True)
class _Picture:
    """The merged picture of the node and where the worker stands in the streams."""

    tracks: dict[int, Track]
    cell_of: dict[int, int]
    cell_live: dict[int, IntArray]
    handed: dict[int, tuple[float, float]]  # track id -> (data time, wall clock) of its hand-over
    predictions: dict[int, dict[str, Any]]
    parts: dict[tuple[Any, ...], dict[int, dict[str, Any]]]
    time_s: float = -math.inf
    eval_s: float = -math.inf
    last_seq: int = 0
    pred_last_seq: int = 0

    @classmethod
    def empty(cls) -> _Picture:
        return cls({}, {}, {}, {}, {}, {})


def _incident_number(incident_id: str, prefix: str) -> int:
    head = prefix + "-"
    if not incident_id.startswith(head):
        return 0
    tail = incident_id[len(head) :]
    return int(tail) if tail.isdigit() else 0


class AlertWorker:
    """One alert worker: lease -> durable consumers -> merged picture -> alert engine -> store +
    bus + notifier -> snapshot -> ack (see the module docstring). :meth:`run_once` is one round."""

    def __init__(
        self,
        settings: Settings,
        store: Any,
        bus: Any,
        *,
        worker_id: str | None = None,
        notifier: Notifier | None = None,
        clock: Callable[[], float] = time.time,
        fetch_batch: int | None = None,
    ) -> None:
        from stratowatch.service.pipeline import _notifier, rules_config

        self.settings = settings
        self.store = store
        self.bus = bus
        self.clock = clock
        self.worker_id = worker_id or f"{socket.gethostname()}-{os.getpid()}-{uuid.uuid4().hex[:6]}"
        self.lease_s = float(settings.scale.lease_s)
        self.step_s = float(settings.pipeline.step_s)
        self.handed_timeout_s = 2.0 * self.lease_s
        self.fetch_batch = int(fetch_batch or settings.scale.fetch_batch)
        self.rules = rules_config(settings)
        self.notifier: Notifier = notifier if notifier is not None else _notifier(settings, store)
        self._own_notifier = notifier is None
        self.stats = AlertStats()
        self.active = False
        self.engine: AlertEngine | None = None
        self.picture = _Picture.empty()
        self.consumer: Any = None
        self.pred_consumer: Any = None
        self._lease_due = 0.0
        self._fences_due = 0.0

    # ------------------------------------------------------------------ the lease
    def poll_lease(self) -> bool:
        """Renew the lease when active (stepping down when it was taken), else claim it when it
        is free or expired. Returns whether this worker is the active one."""
        now = self.clock()
        if self.active:
            if self.store.renew_cells(self.worker_id, [LEASE_CELL], self.lease_s, now):
                return True
            log.warning("alert worker %s: lost the lease; standing by", self.worker_id)
            self.stats.leases_lost += 1
            self._deactivate()
            return False
        holder = self.store.cell_leases().get(LEASE_CELL)
        if holder is not None and holder[0] != self.worker_id and holder[1] >= now:
            return False  # another worker is active: stand by
        if self.store.claim_cells(self.worker_id, [LEASE_CELL], self.lease_s, now):
            if holder is not None and holder[0] != self.worker_id:
                self.stats.takeovers += 1
                log.info("alert worker %s: takes over from %s", self.worker_id, holder[0])
            self._activate()
        return self.active

    def _activate(self) -> None:
        """Restore the snapshot (or start afresh) and open both consumers at its positions."""
        engine = AlertEngine(self.store.geofences(), self.rules, self.clock, book=IncidentBook(PREFIX))
        picture = _Picture.empty()
        blob = self.store.load_state(STATE_KEY)
        snap = pickle.loads(blob) if blob else None  # the store is trusted (as for the cell snapshots)
        if snap is not None and snap.get("version") == STATE_VERSION:
            engine.restore(snap["engine"])
            picture = snap["picture"]
            now = self.clock()  # hand-overs wait from now: the destination's report may be next
            picture.handed = {tid: (t, now) for tid, (t, _w) in picture.handed.items()}
        else:
            if snap is not None:
                log.warning("alert worker: stored state of another version; starting afresh")
            # numbers after those already issued (e.g. by an ``all`` role that ran before)
            issued = [_incident_number(i.incident_id, PREFIX) for i in self.store.incidents(limit=None)]
            engine.book.number_from(max(issued, default=0) + 1)
        self.engine, self.picture = engine, picture
        self._fences_due = time.monotonic() + GEOFENCES_EVERY_S
        self.consumer = self.bus.durable(
            CONSUMER,
            TRACKS_SUBJECT,
            start_seq=picture.last_seq + 1,
            reset=True,
            ack_wait_s=self.settings.scale.ack_wait_s,
            max_ack_pending=max(4 * self.fetch_batch, 64),
        )
        self.pred_consumer = self.bus.durable(
            PREDICTIONS_CONSUMER,
            PREDICTIONS_SUBJECT,
            start_seq=picture.pred_last_seq + 1,
            reset=True,
            ack_wait_s=self.settings.scale.ack_wait_s,
            max_ack_pending=max(4 * self.fetch_batch, 64),
        )
        self.active = True
        self.stats.activations += 1
        log.info(
            "alert worker %s: active from tracks seq %d, predictions seq %d",
            self.worker_id,
            picture.last_seq,
            picture.pred_last_seq,
        )

    def _deactivate(self) -> None:
        for c in (self.consumer, self.pred_consumer):
            if c is not None:
                with contextlib.suppress(Exception):
                    c.close()
        self.consumer = self.pred_consumer = None
        self.engine = None
        self.picture = _Picture.empty()
        self.active = False

    def release(self) -> None:
        """Step down and give the lease back (a graceful stop: a standby takes over at once)."""
        was = self.active
        self._deactivate()
        if was:
            with contextlib.suppress(Exception):
                self.store.release_cells(self.worker_id, [LEASE_CELL])

    # ------------------------------------------------------------------ the loop
    def run(self, stop: threading.Event) -> None:
        """Until ``stop``: keep (or wait for) the lease and work the streams."""
        while not stop.is_set():
            try:
                self.run_once()
            except Exception:
                log.exception("alert worker %s: round failed", self.worker_id)
                stop.wait(1.0)
            if not self.active:
                stop.wait(min(0.5, self.lease_s / 3.0))

    def run_once(self, timeout_s: float = 0.5) -> int:
        """One round: the lease when due; when active, one fetch of predictions and of track
        events, applied, evaluated, stored, published, snapshotted, then acknowledged. Returns the
        number of messages handled."""
        if time.monotonic() >= self._lease_due:
            try:
                self.poll_lease()
            except Exception:
                log.exception("alert worker %s: lease round failed", self.worker_id)
            self._lease_due = time.monotonic() + self.lease_s / 3.0
        if not self.active:
            return 0
        if time.monotonic() >= self._fences_due and self.engine is not None:
            with contextlib.suppress(Exception):
                self.engine.set_geofences(self.store.geofences())
            self._fences_due = time.monotonic() + GEOFENCES_EVERY_S
        preds = self.pred_consumer.fetch(self.fetch_batch, 0.05)
        msgs = self.consumer.fetch(self.fetch_batch, timeout_s)
        if not msgs and not preds:
            return 0
        from stratowatch.store.base import LeaseLost

        try:
            self._apply(preds, msgs)
        except LeaseLost as exc:
            log.warning("alert worker %s: %s; standing by", self.worker_id, exc)
            self.stats.leases_lost += 1
            self._deactivate()
            return 0
        except Exception:
            log.exception("alert worker %s: batch failed; resuming from the snapshot", self.worker_id)
            self.stats.resyncs += 1
            self._deactivate()
            with contextlib.suppress(Exception):
                self._activate()
            return 0
        for consumer, batch in ((self.pred_consumer, preds), (self.consumer, msgs)):
            try:
                consumer.ack(batch)
            except Exception as exc:  # committed: a redelivery is skipped by its sequence
                log.warning("alert worker %s: acknowledgement failed (%s)", self.worker_id, exc)
        return len(msgs) + len(preds)

    # ------------------------------------------------------------------ one batch
    def _apply(self, preds: Sequence[Any], msgs: Sequence[Any]) -> None:
        """Both batches in stream order (one stream holds both subjects), evaluated as described
        in the module docstring, then stored and snapshotted."""
        pic = self.picture
        dirty = False  # something the rules have not seen yet (a new prediction counts)
        synced = False
        batch = sorted([(m.stream_seq, True, m) for m in preds] + [(m.stream_seq, False, m) for m in msgs])
        for seq, is_prediction, m in batch:
            if is_prediction:
                if seq <= pic.pred_last_seq:
                    continue
                pic.pred_last_seq = seq
                event = self._event(m)
                if event is not None:
                    dirty |= self._prediction(event)
                continue
            if seq <= pic.last_seq:
                continue  # committed before: acknowledged again, not applied
            pic.last_seq = seq
            event = self._event(m)
            if event is None or str(event.get("audience", "")) != "":
                continue
            self.stats.events += 1
            t = float(event.get("time_s", pic.time_s))
            if dirty and math.isfinite(t) and t >= pic.eval_s + self.step_s:
                if not synced:
                    self.sync_operator_changes()
                    synced = True
                self.evaluate()
                dirty = False
            self._merge(event)
            dirty = True
        if dirty:
            if not synced:
                self.sync_operator_changes()
            self.evaluate()
        self._prune_predictions()
        self._commit()

    def _prune_predictions(self) -> None:
        """Forget predictions of tracks the picture does not hold once they are old (a prediction
        may come before its track's event when the two consumers' batches differ)."""
        pic = self.picture
        old = pic.time_s - max(self.handed_timeout_s, self.rules.lost_after_s)
        stale = [k for k, p in pic.predictions.items() if k not in pic.tracks and not p["time_s"] >= old]
        for k in stale:
            del pic.predictions[k]

    def _event(self, m: Any) -> dict[str, Any] | None:
        """The event of a message; a part of a split event is kept until all parts are in."""
        try:
            doc = m.event()
        except ValueError:
            log.warning("alert worker: %r is not an event; skipped", m)
            return None
        n = doc.get("parts")
        if not isinstance(n, int) or n < 2 or not isinstance(doc.get("part"), int):
            return doc
        pending = self.picture.parts
        key = (m.subject, n, *(repr(doc.get(k)) for k in ("time_s", "audience", "cell", "track_id")))
        got = pending.setdefault(key, {})
        got[int(doc["part"])] = doc
        if len(got) < n:
            while len(pending) > MAX_PENDING_PARTS:
                del pending[next(iter(pending))]
            return None
        del pending[key]
        parts = [got[k] for k in sorted(got)]
        list_key = str(parts[0].get("part_key", "tracks"))
        whole = {k: v for k, v in parts[0].items() if k not in ("part", "parts", "part_key")}
        whole[list_key] = [x for p in parts for x in p.get(list_key, ())]
        return whole

    def _prediction(self, event: Mapping[str, Any]) -> bool:
        """Keep what the rules read of a prediction of the node's own picture; whether it was kept."""
        if str(event.get("audience", "")) != "":
            return False
        payload = event.get("payload")
        if not isinstance(payload, Mapping) or "error" in payload:
            return False
        self.stats.predictions += 1
        tid = int(event["track_id"])
        self.picture.predictions[tid] = {
            "track_id": tid,
            "time_s": float(event.get("time_s", payload.get("time_s", math.nan))),
            "arrivals": list(payload.get("arrivals") or ()),
        }
        return tid in self.picture.tracks

    def _merge(self, event: Mapping[str, Any]) -> None:
        """One track event into the picture (see the module docstring)."""
        pic = self.picture
        t_event = float(event.get("time_s", pic.time_s))
        docs = event.get("tracks") or ()
        live_docs = [d for d in docs if d.get("status") != "ended"]
        ended_docs = [int(d["track_id"]) for d in docs if d.get("status") == "ended"]
        tracks = [track_from_json(d) for d in live_docs]
        ids = np.fromiter((t.track_id for t in tracks), np.int64, len(tracks))
        if "cell" not in event:  # a whole picture: replaces everything
            pic.tracks = dict(zip(ids.tolist(), tracks, strict=True))
            pic.cell_of = dict.fromkeys(pic.tracks, WHOLE)
            pic.cell_live = {WHOLE: np.unique(ids)}
            pic.handed = {}
            pic.predictions = {k: v for k, v in pic.predictions.items() if k in pic.tracks}
        else:
            cell = int(event["cell"])
            for tid, track in zip(ids.tolist(), tracks, strict=True):
                old = pic.tracks.get(tid)
                if old is None or track.time_s >= old.time_s or tid in pic.handed:
                    pic.tracks[tid] = track
                    previous = pic.cell_of.get(tid)
                    if previous is not None and previous != cell:
                        pic.cell_live[previous] = pic.cell_live[previous][pic.cell_live[previous] != tid]
                    pic.cell_of[tid] = cell
                    pic.handed.pop(tid, None)
            before = pic.cell_live.get(cell, np.empty(0, np.int64))
            held = np.fromiter((pic.cell_of.get(i) == cell for i in ids.tolist()), bool, ids.size)
            now = np.unique(ids[held])
            pic.cell_live[cell] = now
            handed = np.asarray(event.get("handed") or (), np.int64)
            ended = np.asarray([*(event.get("ended") or ()), *ended_docs], np.int64)
            gone = np.setdiff1d(np.union1d(before, ended), now)
            for tid in gone.tolist():
                if pic.cell_of.get(tid) != cell:
                    continue  # another cell holds it now (or it is gone already)
                if tid in handed and tid not in ended:
                    pic.handed[tid] = (t_event, self.clock())  # stays until the destination reports it
                else:
                    self._forget(tid)
        if math.isfinite(t_event):
            pic.time_s = max(pic.time_s, t_event)
        if pic.handed:
            self._expire_handed()

    def _expire_handed(self) -> None:
        """Drop handed-over tracks no cell reported again: after ``2 * lease_s`` of wall-clock time
        (since the hand-over, or since this worker became active) and once the rules would call
        them lost anyway (``[alerts] lost_after_s`` of data time; until then they coast here)."""
        pic = self.picture
        wall = self.clock() - self.handed_timeout_s
        data = pic.time_s - max(self.handed_timeout_s, self.rules.lost_after_s)
        for tid in [i for i, (t, w) in pic.handed.items() if t < data and w < wall]:
            log.info("alert worker: track %d was handed over and never reported again; dropped", tid)
            self._forget(tid)

    def _forget(self, tid: int) -> None:
        pic = self.picture
        pic.tracks.pop(tid, None)
        pic.handed.pop(tid, None)
        pic.predictions.pop(tid, None)
        cell = pic.cell_of.pop(tid, None)
        if cell is not None and cell in pic.cell_live:
            pic.cell_live[cell] = pic.cell_live[cell][pic.cell_live[cell] != tid]

    # ------------------------------------------------------------------ operator actions
    def sync_operator_changes(self) -> int:
        """Re-read each active incident (and the alerts an operator acknowledged) from the store
        and take in what API workers changed; returns how many incidents changed."""
        assert self.engine is not None
        book = self.engine.book
        changed = 0
        for inc in [i for i in book.incidents() if i.status in ACTIVE]:
            stored = self.store.incident(inc.incident_id)
            if stored is None:
                continue
            if book.absorb(stored) is not None:
                changed += 1
                self._absorb_acks(stored, inc)
        self.stats.operator_changes += changed
        return changed

    def _absorb_acks(self, stored: Incident, mine: Incident) -> None:
        assert self.engine is not None
        seen = set(mine.history)
        for _t, _who, what in stored.history:
            if (_t, _who, what) in seen or not what.startswith("acknowledged alert "):
                continue
            alert = self.store.alert(what[len("acknowledged alert ") :])
            if alert is not None:
                self.engine.book.absorb_alert(alert)

    # ------------------------------------------------------------------ evaluation
    def evaluate(self) -> tuple[list[Alert], list[Incident]]:
        """The rules over the merged picture at its data time; new alerts and changed incidents
        are marked, merged with the stored rows, stored, published and notified."""
        assert self.engine is not None
        pic = self.picture
        time_s = pic.time_s
        if not math.isfinite(time_s):
            return [], []
        pic.eval_s = time_s
        self.stats.evaluations += 1
        alerts = self.engine.evaluate(time_s, list(pic.tracks.values()), pic.predictions)
        incidents = list(self.engine.last_incidents)
        if not alerts and not incidents:
            return [], []
        book = self.engine.book
        out_alerts = []
        for a in alerts:
            stored = self.store.alert(a.alert_id)
            if (
                stored is not None
                and stored.acknowledged_by is not None
                and a.acknowledged_by is None
                and stored.incident_id == a.incident_id
            ):  # an acknowledgement stands within its incident (a new incident is news again)
                a = book.absorb_alert(stored) or a
                a = replace(a, acknowledged_by=stored.acknowledged_by, acknowledged_s=stored.acknowledged_s)
            out_alerts.append(self._mark(a))
        out_incidents = []
        for inc in incidents:
            stored_inc = self.store.incident(inc.incident_id)
            if stored_inc is not None:
                inc = book.absorb(stored_inc) or inc  # an operator's change made meanwhile stays
            out_incidents.append(self._mark(inc))
        by_id = {i.incident_id: i for i in out_incidents}
        for a in out_alerts:
            self.store.write_alert(a)
            self.bus.publish("alerts", alert_to_json(a))
            self.notifier.notify(a, by_id.get(a.incident_id or ""))
        for inc in out_incidents:
            self.store.write_incident(inc)
            self.bus.publish("incidents", incident_to_json(inc))
        self.stats.alerts += len(out_alerts)
        self.stats.incidents += len(out_incidents)
        return out_alerts, out_incidents

    def _mark(self, item: Any) -> Any:
        """As the pipeline marks the node's own picture: audience "", the meet of its tracks'
        labels (and its geofence's), this node as originator."""
        assert self.engine is not None
        tracks = self.picture.tracks
        ids = [item.track_id] if isinstance(item, Alert) else list(item.track_ids)
        label = meet_all(tracks[t].releasable_to for t in ids if t is not None and t in tracks)
        if isinstance(item, Alert) and item.geofence_id is not None:
            for fence in self.engine.geofences:
                if fence.geofence_id == item.geofence_id:
                    label = meet(label, fence.releasable_to)
        return replace(item, audience="", releasable_to=label, originator=self.settings.node.partner)

    # ------------------------------------------------------------------ the snapshot
    def snapshot(self) -> bytes:
        assert self.engine is not None
        return pickle.dumps(
            {"version": STATE_VERSION, "engine": self.engine.snapshot(), "picture": self.picture},
            protocol=pickle.HIGHEST_PROTOCOL,
        )

    def _commit(self) -> None:
        """Published events out, then the snapshot, only while the lease names this worker."""
        flush = getattr(self.bus, "flush", None)
        if flush is not None and not flush(max(5.0, self.lease_s)):
            raise TimeoutError("the bus did not take the alert events; the batch comes again")
        self.store.commit_cell(
            LEASE_CELL,
            self.worker_id,
            observations=[],
            obs_ids=[],
            tracks=[],
            ended_ids=[],
            ended_s=0.0,
            state_key=STATE_KEY,
            state_blob=self.snapshot(),
        )
        self.stats.commits += 1

    def close(self) -> None:
        self.release()
        if self._own_notifier:
            close = getattr(self.notifier, "close", None)
            if close is not None:
                close()


def run_alert_role(settings: Settings, stop: threading.Event, worker_id: str | None = None) -> None:
    """The alert role on the configured store and NATS bus until ``stop`` is set; then it gives
    the lease back. Needs ``bus_url = "nats://..."``."""
    from stratowatch.service.bus_nats import open_nats_bus
    from stratowatch.service.pipeline import configured_geofences
    from stratowatch.store import open_store

    if not settings.bus_url.startswith("nats://"):
        raise ConfigError(f"the alert role consumes NATS: bus_url {settings.bus_url!r} is not nats://")
    store = open_store(settings.store_url, retention=settings.retention.store_settings())
    bus = open_nats_bus(settings.bus_url, name=f"stratowatch-alert-{worker_id or os.getpid()}")
    worker = None
    try:
        for g in configured_geofences(settings):  # as the pipeline does: the store holds the set
            store.write_geofence(g)
        worker = AlertWorker(settings, store, bus, worker_id=worker_id)
        log.info("alert role %s: standing by for the lease", worker.worker_id)
        worker.run(stop)
    finally:
        if worker is not None:
            worker.close()
        bus.close()
        store.close()


__all__ = [
    "CONSUMER",
    "LEASE_CELL",
    "PREDICTIONS_CONSUMER",
    "STATE_KEY",
    "AlertWorker",
    "run_alert_role",
]
