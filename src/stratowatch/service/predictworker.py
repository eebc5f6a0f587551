"""The predict role: drift ensembles for the balloons and unknowns of the live picture, off NATS.

``stratowatch serve --role predict`` runs :func:`run_predict_role`. A :class:`PredictWorker`
consumes the track events (``sw.tracks``, stream ``SW_TRACKS``: ``{"time_s", "audience",
"tracks": [track_json, ...]}``, what the ``all`` pipeline and the tracker workers publish) through
the durable consumer ``sw-predict``, and for each fetched batch:

1. keeps, from each event, the confirmed tracks of the classes ``[predictions] classes`` names
   (the JSON is filtered before anything is decoded: an event of 50,000 aircraft costs a scan);
2. asks :class:`~stratowatch.service.predictions.PredictionScheduler` which are due (no
   prediction yet, older than ``every_s`` of data time, moved more than ``moved_m``, class
   changed) and runs them on the executor: the local process pool (``[predictions] workers``) or
   a Dask cluster (``--dask-scheduler`` / ``[predictions] dask_scheduler``); the ensembles are
   seeded by track id, so the payload is the same whichever executor ran it;
3. waits for them, writes each payload to the store (``predictions``, with its track's label and
   the node as originator) and publishes it on ``sw.predictions``;
4. **then** acknowledges the events. A worker that dies before that gets them again (another
   worker of the same durable consumer, or itself after a restart): a prediction may be computed
   and stored twice (the same payload: readers take the latest), never lost.

Several predict workers share the one durable consumer: the server hands each batch to one of
them (a work queue). Each keeps its own "last predicted" book, so two workers may both predict a
track that both see; the cost is a repeated ensemble, not a wrong answer.

Geofences (for the arrival probabilities) are re-read from the store every ``GEOFENCES_EVERY_S``.
"""

from __future__ import annotations

import contextlib
import logging
import math
import threading
import time
from collections.abc import Mapping, Sequence
from typing import Any

from stratowatch.config import ConfigError, Settings
from stratowatch.model import PUBLIC, Track
from stratowatch.service.predictions import PredictionScheduler
from stratowatch.service.serialize import track_from_json
from stratowatch.weather.grid import WindGrid

log = logging.getLogger(__name__)

CONSUMER = "sw-predict"
TRACKS_SUBJECT = "sw.tracks"
GEOFENCES_EVERY_S = 30.0
_FROM_SETTINGS: Any = object()


def _wanted(doc: Mapping[str, Any], classes: Sequence[str]) -> bool:
    """A track JSON the predictor may want (confirmed, of a predicted class), without decoding it."""
    if doc.get("status") != "confirmed":
        return False
    c = doc.get("classification")
    return isinstance(c, Mapping) and str(c.get("label")) in classes


class PredictWorker:
    """One prediction worker: durable consumer -> scheduler -> executor -> store + bus -> ack."""

    def __init__(
        self,
        settings: Settings,
        store: Any,
        bus: Any,
        *,
        winds: WindGrid | None = _FROM_SETTINGS,
        executor: Any = None,
        consumer: str = CONSUMER,
        fetch_batch: int = 32,
        ack_wait_s: float = 600.0,
        job_timeout_s: float = 300.0,
    ) -> None:
        from stratowatch.prediction.executors import LocalExecutor
        from stratowatch.service.pipeline import wind_field
        from stratowatch.service.predictions import dask_executor

        self.settings = settings
        self.store = store
        self.bus = bus
        grid = wind_field(settings) if winds is _FROM_SETTINGS else winds
        if grid is None:
            raise ConfigError("the predict role needs a wind field: [winds] files or analytic = true")
        self.grid = grid
        self._own_executor = executor is None
        if executor is None:
            executor = dask_executor(settings.predictions) or LocalExecutor(settings.predictions.workers)
        self.executor = executor
        self.scheduler = PredictionScheduler(settings.predictions, grid, store.geofences(), executor=executor)
        self._fences_due = time.monotonic() + GEOFENCES_EVERY_S
        self.fetch_batch = fetch_batch
        self.job_timeout_s = job_timeout_s
        # one ensemble per member chunk may take long: redeliver only after a generous wait
        self.consumer = bus.durable(
            consumer, TRACKS_SUBJECT, max_ack_pending=max(4 * fetch_batch, 64), ack_wait_s=ack_wait_s
        )
        self.events = 0
        self.stored = 0

    # ------------------------------------------------------------------ one round
    def run_once(self, timeout_s: float = 0.5) -> int:
        """Fetch a batch of track events, predict what is due, store, publish, ack. Returns the
        number of events handled."""
        if time.monotonic() >= self._fences_due:
            with contextlib.suppress(Exception):
                self.scheduler.set_geofences(self.store.geofences())
            self._fences_due = time.monotonic() + GEOFENCES_EVERY_S
        msgs = self.consumer.fetch(self.fetch_batch, timeout_s)
        if not msgs:
            return 0
        classes = tuple(self.settings.predictions.classes)
        audience: dict[int, str] = {}
        labels: dict[int, frozenset[str]] = {}
        for m in sorted(msgs, key=lambda m: m.stream_seq):
            try:
                event = m.event()
            except ValueError:
                log.warning("predict worker: %r is not a track event; skipped", m)
                continue
            docs = event.get("tracks") or ()
            ended = [int(d["track_id"]) for d in docs if d.get("status") == "ended"]
            if ended:
                self.scheduler.forget(ended)
            tracks: list[Track] = [track_from_json(d) for d in docs if _wanted(d, classes)]
            for t in tracks:
                audience[t.track_id] = str(event.get("audience", t.audience or ""))
                labels[t.track_id] = t.releasable_to
            time_s = float(event.get("time_s", max((t.time_s for t in tracks), default=math.nan)))
            if tracks:
                self.scheduler.schedule(time_s, tracks)
        self._finish(audience, labels)
        self.consumer.ack(msgs)
        self.events += len(msgs)
        return len(msgs)

    def _finish(self, audience: Mapping[int, str], labels: Mapping[int, frozenset[str]]) -> None:
        """Wait for the jobs in flight, then store and publish each payload (before the ack)."""
        deadline = time.monotonic() + self.job_timeout_s
        payloads: list[dict[str, Any]] = []
        while True:
            payloads.extend(self.scheduler.collect())
            if not self.scheduler.in_flight:
                break
            if time.monotonic() >= deadline:  # not acknowledged: the events come again
                self.scheduler.forget(list(audience))  # ... and are predicted then
                raise TimeoutError(
                    f"{self.scheduler.in_flight} predictions still running after {self.job_timeout_s} s"
                )
            self.scheduler.wait(min(1.0, max(0.0, deadline - time.monotonic())))
        for payload in payloads:
            self.publish(payload, audience.get(int(payload["track_id"]), ""), labels)

    def publish(
        self, payload: Mapping[str, Any], audience: str, labels: Mapping[int, frozenset[str]]
    ) -> None:
        tid = int(payload["track_id"])
        doc = {
            **payload,
            "releasable_to": sorted(labels.get(tid, PUBLIC)),
            "originator": self.settings.node.partner,
        }
        self.store.write_prediction(tid, float(doc["time_s"]), doc, audience)
        self.stored += 1
        self.bus.publish(
            "predictions",
            {"track_id": tid, "time_s": float(doc["time_s"]), "audience": audience, "payload": doc},
        )

    def run(self, stop: threading.Event) -> None:
        """Until ``stop``: rounds of :meth:`run_once`; a failed round is logged and its events
        (not acknowledged) come again after the consumer's ack wait."""
        while not stop.is_set():
            try:
                self.run_once()
            except Exception:
                log.exception("predict worker: round failed; its events will be delivered again")
                stop.wait(1.0)

    def close(self) -> None:
        self.consumer.close()
        if self._own_executor:
            self.scheduler.close()


def run_predict_role(settings: Settings, stop: threading.Event) -> None:
    """The predict role on the configured store and NATS bus until ``stop`` is set."""
    from stratowatch.service.bus_nats import open_nats_bus
    from stratowatch.store import open_store

    if not settings.bus_url.startswith("nats://"):
        raise ConfigError(f"the predict role consumes NATS: bus_url {settings.bus_url!r} is not nats://")
    store = open_store(settings.store_url, retention=settings.retention.store_settings())
    bus = open_nats_bus(settings.bus_url, name="stratowatch-predict")
    worker = None
    try:
        worker = PredictWorker(settings, store, bus)
        log.info(
            "predict role: ensembles on %s", settings.predictions.dask_scheduler or "the local process pool"
        )
        worker.run(stop)
    finally:
        if worker is not None:
            worker.close()
        bus.close()
        store.close()


__all__ = ["CONSUMER", "PredictWorker", "run_predict_role"]
