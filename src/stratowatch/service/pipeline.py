"""The live pipeline: one step takes a batch of observations through every stage.

``Pipeline.process(time_s, observations)``:

1. commits the observations to the store (only then are they counted as ingested: what was
   acknowledged survives ``kill -9``);
2. steps the tracker (columnar fast path) and classifies the reported tracks, with the wind
   match when a wind field is configured and the emitter categories the feeds reported;
3. ends tracks the tracker dropped, writes the states of the reported ones (to the history only
   those a measurement updated or whose status changed: :class:`HistoryMarks`);
4. collects finished predictions and schedules new ones (process pool, never waited for);
5. evaluates the alert rules, stores alerts and incidents, notifies in the background;
6. publishes ``tracks`` (and ``alerts``, ``incidents``, ``predictions``) on the bus;
7. every ``pipeline.state_every_steps`` steps, snapshots the tracker into the store.

Releasability views: the pipeline keeps one picture per audience. The node's own (audience ``""``)
is built from every observation; for each partner configured in ``[[partners]]`` another tracker,
alert engine and incident book build that partner's picture from only the observations whose
label (met with their sensor's) releases them to it, so nothing withheld from a partner can reach
it through fusion, track history, predictions, alerts or counts. Each picture numbers its tracks
in its own block (:data:`ID_BLOCK`); tracks carry their ``audience`` and the meet of their
sensors' labels. Only the node's own picture notifies.

On start the pipeline restores the latest snapshot and replays the observations the store
committed after it, so a restart (even after ``kill -9``) resumes the same tracks. Incidents and
alert de-duplication are snapshotted whenever they change.

``process`` is synchronous and holds a lock; the service runs it in a worker thread so the
event loop (HTTP API, live streams) stays responsive, and ``acknowledge``/``resolve`` take the
same lock.
"""

from __future__ import annotations

import json
import logging
import math
import pickle
import threading
import time
from collections.abc import Callable, Mapping, Sequence
from concurrent.futures import Executor
from dataclasses import dataclass, field, replace
from typing import Any

import numpy as np

from stratowatch.alerts import AlertEngine, RulesConfig, UnknownIdError
from stratowatch.alerts.geofences import geofences_from_config, load_border_sides, load_geofences
from stratowatch.alerts.geofences import sample_sites_path as _sample_sites_path
from stratowatch.alerts.incidents import IncidentBook
from stratowatch.alerts.notify import BackgroundNotifier, LogNotifier, MqttNotifier, Notifier, WebhookNotifier
from stratowatch.classify import classify_table
from stratowatch.classify.wind import WindMatch, wind_match
from stratowatch.config import ConfigError, Settings
from stratowatch.ingest.registry import RegistryError, SensorRegistry, load_registry, registry_from_dict
from stratowatch.model import PUBLIC, Alert, Geofence, Incident, Observation, ObservationBatch, Sensor, Track
from stratowatch.service.bus import InProcessBus
from stratowatch.service.bus_base import Bus
from stratowatch.service.history import HistoryMarks
from stratowatch.service.predictions import PredictionScheduler
from stratowatch.service.serialize import alert_to_json, incident_to_json, track_to_json
from stratowatch.sharing.labels import LabelTable, meet, meet_all, visible
from stratowatch.tracking import Tracker, TrackTable
from stratowatch.weather.grid import WindGrid

log = logging.getLogger(__name__)

TRACKER_STATE_KEY = "pipeline.tracker"
ALERTS_STATE_KEY = "pipeline.alerts"
STATE_VERSION = 2
#: Track ids of the picture of audience number k start at k * ID_BLOCK + 1.
ID_BLOCK = 1_000_000_000
#: Observations read from the store per page when replaying after a snapshot.
REPLAY_PAGE = 50_000


# ----------------------------------------------------------------------------- set-up helpers


def sensor_registry(settings: Settings) -> SensorRegistry:
    """The configured sensors: the registry file and the inline ``[[sensors.sensor]]`` tables."""
    try:
        reg = (
            load_registry(settings.path(settings.sensors.registry))
            if settings.sensors.registry
            else SensorRegistry()
        )
        if settings.sensors.sensor:
            inline = registry_from_dict({"sensor": list(settings.sensors.sensor)}, "sensors.sensor")
            reg = SensorRegistry({**reg.sensors, **inline.sensors}, {**reg.aliases, **inline.aliases})
    except RegistryError as exc:
        raise ConfigError(str(exc)) from None
    return reg


def configured_geofences(settings: Settings) -> list[Geofence]:
    """Geofences of the configuration: the sample sites (if on), the files, the inline zones."""
    out: dict[str, Geofence] = {}
    try:
        if settings.geofences.sample_sites:
            out.update((g.geofence_id, g) for g in load_geofences(_sample_sites_path()))
        for f in settings.geofences.files:
            out.update((g.geofence_id, g) for g in load_geofences(settings.path(f)))
        if settings.geofences.zones:
            out.update(
                (g.geofence_id, g) for g in geofences_from_config(settings.geofences.zones, "geofences.zones")
            )
    except ValueError as exc:
        raise ConfigError(str(exc)) from None
    return list(out.values())


def steady_field(grid: WindGrid) -> WindGrid:
    """The field's first analysis time only: a steady field valid at any time."""
    one = slice(0, 1)
    return replace(
        grid,
        time_s=grid.time_s[one].copy(),
        u_mps=grid.u_mps[one].copy(),
        v_mps=grid.v_mps[one].copy(),
        height_m=grid.height_m[one].copy(),
        w_mps=None if grid.w_mps is None else grid.w_mps[one].copy(),
        temperature_k=None if grid.temperature_k is None else grid.temperature_k[one].copy(),
        notes=[*grid.notes, "used as a steady field (first analysis time)"],
    )


def shift_field(grid: WindGrid, start_s: float) -> WindGrid:
    """The field with its time axis moved so that its first analysis time is ``start_s``."""
    return replace(
        grid,
        time_s=grid.time_s - grid.time_s[0] + start_s,
        notes=[*grid.notes, f"time axis shifted by {(start_s - grid.time_s[0]) / 86400.0:+.1f} days"],
    )


def wind_field(settings: Settings, now_s: float | None = None) -> WindGrid | None:
    """The configured wind field: the files (merged), else the analytic field when asked, else None."""
    from stratowatch.weather import WindFormatError, analytic_field, load_winds

    w = settings.winds
    if w.files:
        try:
            grid = load_winds([settings.path(f) for f in w.files])
        except WindFormatError as exc:
            raise ConfigError(f"winds.files: {exc}") from None
    elif w.analytic:
        t0 = (time.time() if now_s is None else now_s) - 6 * 3600.0
        grid = analytic_field(t0_s=t0, hours=96.0)
    else:
        return None
    return steady_field(grid) if w.steady else grid


def drift_wind_match(tracker: Tracker, table: TrackTable, winds: WindGrid) -> WindMatch:
    """The wind match under the balloon hypothesis: the drift model's own velocity and velocity
    covariance (at each track's last update), rotated to east/north, against the wind.

    The IMM's combined covariance mixes in the aircraft models' spread and is often too wide to
    say anything; the drift model's is what "does it drift with the wind?" asks about."""
    trk = tracker.tracks
    rows = np.searchsorted(trk.track_id, table.track_id)
    rows = np.minimum(rows, max(len(trk) - 1, 0))
    names = [m.name for m in tracker.models]
    if (
        not len(trk)
        or not np.array_equal(trk.track_id[rows], table.track_id)
        or (tracker.config.balloon_model not in names)
    ):
        vel = table.velocity_enu_mps[:, :2]
        sigma = np.sqrt(np.trace(table.P[:, 3:, 3:], axis1=1, axis2=2) / 2.0)
    else:
        b = names.index(tracker.config.balloon_model)
        x, P = trk.x[rows, b], trk.P[rows, b]
        basis = tracker.frame.enu_basis(x[:, :3])[:, :2, :]
        vel = np.einsum("nij,nj->ni", basis, x[:, 3:])
        cov = np.einsum("nij,njk,nlk->nil", basis, P[:, 3:, 3:], basis)
        sigma = np.sqrt(np.maximum(cov[:, 0, 0] + cov[:, 1, 1], 0.0) / 2.0)
    return wind_match(winds, table.time_s, table.lat_deg, table.lon_deg, table.alt_m, vel, sigma)


def _listened(bus: Any, topic: str) -> bool:
    has = getattr(bus, "has_subscribers", None)
    return True if has is None else bool(has(topic))


def _notifier(settings: Settings, store: Any) -> BackgroundNotifier:
    a = settings.alerts
    notifiers: list[Notifier] = [LogNotifier()]
    if a.webhook_url:

        def dead_letter(record: Mapping[str, Any]) -> None:
            store.audit("notifier", "dead_letter", dict(record))

        notifiers.append(WebhookNotifier(a.webhook_url, dead_letter=dead_letter))
    if a.mqtt_host:
        notifiers.append(MqttNotifier(a.mqtt_host, a.mqtt_port, a.mqtt_topic))
    return BackgroundNotifier(notifiers)


def rules_config(settings: Settings) -> RulesConfig:
    a = settings.alerts
    sides: dict[str, tuple[str, str]] = {}
    for f in settings.geofences.files:
        sides.update(load_border_sides(settings.path(f)))
    return RulesConfig(
        predicted_entry_hours=a.predicted_entry_hours,
        predicted_entry_probability=a.predicted_entry_probability,
        new_object_min_alt_m=a.new_object_min_alt_m,
        lost_after_s=a.lost_after_s,
        border_geofence_ids=tuple(a.border_geofence_ids),
        border_sides=sides,
    )


# ----------------------------------------------------------------------------- the pipeline


@dataclass(slots=True)
class View:
    """One audience's picture: its tracker, alert engine, emitter categories and live tracks."""

    audience: str
    index: int
    tracker: Tracker
    alerts: AlertEngine
    categories: dict[int, str] = field(default_factory=dict)
    live_ids: np.ndarray = field(default_factory=lambda: np.empty(0, np.int64))
    history: HistoryMarks = field(default_factory=HistoryMarks)


@dataclass(slots=True)
class PipelineStats:
    steps: int = 0
    observations_received: int = 0
    observations_committed: int = 0
    observations_replayed: int = 0
    tracks: int = 0
    tracks_ended: int = 0
    alerts: int = 0
    predictions_stored: int = 0
    snapshots: int = 0
    last_time_s: float = float("nan")
    last_step_s: float = 0.0
    busy_s: float = 0.0
    restored_from_s: float = float("nan")
    retention_runs: int = 0
    rows_expired: int = 0


_FROM_SETTINGS: Any = object()


class Pipeline:
    """Tracker -> classifier -> predictions -> alerts -> store -> bus, one step at a time."""

    def __init__(
        self,
        settings: Settings,
        store: Any,
        bus: Bus | None = None,
        *,
        winds: WindGrid | None = _FROM_SETTINGS,
        sensors: Mapping[str, Sensor] | None = None,
        geofences: Sequence[Geofence] | None = None,
        clock: Callable[[], float] = time.time,
        executor: Executor | None = None,
        notifier: Notifier | None = None,
    ) -> None:
        self.settings = settings
        self.store = store
        self.bus = bus or InProcessBus()
        self.clock = clock
        self.stats = PipelineStats()
        self._retention_due_s = math.nan
        self._lock = threading.RLock()
        self.registry = sensor_registry(settings)
        if sensors:
            self.registry = self.registry.with_sensors(sensors)
        self.winds: WindGrid | None = wind_field(settings) if winds is _FROM_SETTINGS else winds
        for s in self.registry.sensors.values():
            store.write_sensor(s)
        config_fences = list(geofences) if geofences is not None else configured_geofences(settings)
        for g in config_fences:
            store.write_geofence(g)
        for partner in settings.partners:
            store.write_partner(partner.id, partner.model_dump())
        audiences = [""] + [p.id for p in settings.partners if p.id != settings.node.partner]
        self.labels = LabelTable(audiences)
        #: Sensor id -> its label: the registry's, narrowed by every label its observations bore.
        self.sensor_labels: dict[str, frozenset[str]] = {
            s.sensor_id: s.releasable_to
            for s in self.registry.sensors.values()
            if "PUBLIC" not in s.releasable_to
        }
        self._registry_labels = dict(self.sensor_labels)
        self.views: list[View] = []
        for k, audience in enumerate(audiences):
            self.views.append(self._new_view(audience, k))
        self.notifier: Notifier = notifier or _notifier(settings, store)
        self.predictor: PredictionScheduler | None = None
        if settings.predictions.enabled and self.winds is not None:
            self.predictor = PredictionScheduler(
                settings.predictions, self.winds, self.alerts.geofences, executor=executor
            )
        self.predictions: dict[int, dict[str, Any]] = {}
        self._restore()

    def _new_view(self, audience: str, index: int) -> View:
        tracker = Tracker(self.registry.sensors)
        tracker._next_id = index * ID_BLOCK + 1
        if index:
            tracker.identities = self.views[0].tracker.identities  # one interning for every picture
        fences = [g for g in self.store.geofences() if not audience or visible(g.releasable_to, audience)]
        book = IncidentBook(f"{audience}-INC" if audience else "INC")
        return View(
            audience, index, tracker, AlertEngine(fences, rules_config(self.settings), self.clock, book=book)
        )

    # The node's own picture, by its old names (tools and tests use them).
    @property
    def tracker(self) -> Tracker:
        return self.views[0].tracker

    @property
    def alerts(self) -> AlertEngine:
        return self.views[0].alerts

    def view(self, audience: str) -> View:
        """The picture of ``audience``; KeyError when this node keeps none for it."""
        for v in self.views:
            if v.audience == audience:
                return v
        raise KeyError(audience)

    # ------------------------------------------------------------------ one step

    def process(self, time_s: float, observations: Sequence[Observation]) -> list[Track]:
        """One step (see the module docstring); returns the node's own reported tracks at
        ``time_s`` (every picture's tracks are stored and published)."""
        with self._lock:
            started = time.perf_counter()
            st = self.stats
            st.observations_received += len(observations)
            observations = self._labelled(observations)
            if observations:
                st.observations_committed += int(self.store.write_observations(observations))
            per_view = self._step_views(float(time_s), observations)
            every = [t for tracks in per_view for t in tracks]
            self._end_tracks(float(time_s), per_view)
            logged = np.concatenate([v.history.mark(t) for v, t in zip(self.views, per_view, strict=True)])
            self.store.write_track_states(every, logged)
            self._predictions(float(time_s), every)
            for view, tracks in zip(self.views, per_view, strict=True):
                self._alerts(view, float(time_s), tracks)
            st.steps += 1
            st.tracks = len(per_view[0])
            st.last_time_s = float(time_s)
            if st.steps % self.settings.pipeline.state_every_steps == 0 or st.steps == 1:
                self.save_state()
            self._retention(float(time_s))
            if _listened(self.bus, "tracks"):  # every track's JSON costs: only when someone listens
                for view, tracks in zip(self.views, per_view, strict=True):
                    self.bus.publish(
                        "tracks",
                        {
                            "time_s": float(time_s),
                            "audience": view.audience,
                            "tracks": [track_to_json(t) for t in tracks],
                        },
                    )
            st.last_step_s = time.perf_counter() - started
            st.busy_s += st.last_step_s
            return per_view[0]

    def _labelled(self, observations: Sequence[Observation]) -> Sequence[Observation]:
        """Observations with their label met with their sensor's registry label (a national-only
        sensor's plots stay national whatever the feed said); sensor labels narrowed to match."""
        reg = self._registry_labels
        out: list[Observation] | None = None
        if reg:
            for i, o in enumerate(observations):  # edge conversion: one dict lookup per observation
                label = reg.get(o.sensor_id)
                if label is not None and (m := meet(o.releasable_to, label)) != o.releasable_to:
                    if out is None:
                        out = list(observations)
                    out[i] = replace(o, releasable_to=m)
        result = observations if out is None else out
        if len(self.views) > 1:
            for sensor_id, label in {(o.sensor_id, o.releasable_to) for o in result}:  # distinct pairs
                if "PUBLIC" not in label:
                    self.sensor_labels[sensor_id] = meet(self.sensor_labels.get(sensor_id, PUBLIC), label)
        return result

    def _step_views(self, time_s: float, observations: Sequence[Observation]) -> list[list[Track]]:
        """Step every picture: the whole batch for the node's own, the released part for each
        partner's (one label lookup per observation, then one mask per partner)."""
        batch = ObservationBatch.from_observations(observations, self.tracker.identities)
        codes = self.labels.codes(o.releasable_to for o in observations) if len(self.views) > 1 else None
        out = []
        for view in self.views:
            sub = batch
            if view.index and codes is not None:
                sub = batch.take(self.labels.visible_mask(view.audience, codes))
            out.append(self._track(view, time_s, sub))
        return out

    def _track(self, view: View, time_s: float, batch: ObservationBatch) -> list[Track]:
        tracker = view.tracker
        if batch.category:
            for i in [i for i, c in enumerate(batch.category) if c]:  # identification messages only
                code = int(batch.identity[i])
                if code >= 0:
                    view.categories[code] = str(batch.category[i])
        table = tracker.step_batch(time_s, batch)
        cats = [view.categories.get(int(c)) for c in table.identity.tolist()]
        winds = self.winds if self.settings.pipeline.classify_with_winds else None
        wind = drift_wind_match(tracker, table, winds) if winds is not None and len(table) else None
        classes = classify_table(
            table,
            [m.name for m in tracker.models],
            tracker.identities,
            winds=winds,
            categories=cats,
            wind=wind,
        )
        return tracker.to_tracks(
            table,
            classifications=classes,
            labels=self.sensor_labels,
            audience=view.audience,
            originator=self.settings.node.partner,
        )

    def _end_tracks(self, time_s: float, per_view: Sequence[Sequence[Track]]) -> None:
        ended: list[int] = []
        for view, tracks in zip(self.views, per_view, strict=True):
            ids = np.fromiter((t.track_id for t in tracks), dtype=np.int64, count=len(tracks))
            ended.extend(np.setdiff1d(view.live_ids, ids).tolist())
            view.live_ids = ids
        if ended:
            self.store.end_tracks(ended, time_s)
            self.stats.tracks_ended += len(ended)
            for tid in ended:
                self.predictions.pop(tid, None)
            if self.predictor is not None:
                self.predictor.forget(ended)

    def audience_of_track(self, track_id: int) -> str:
        """The picture a track id belongs to (its id block)."""
        k = (int(track_id) - 1) // ID_BLOCK
        return next((v.audience for v in self.views if v.index == k), "")

    def _predictions(self, time_s: float, tracks: Sequence[Track]) -> None:
        if self.predictor is None:
            return
        labels: dict[int, frozenset[str]] | None = None
        for payload in self.predictor.collect():
            tid = int(payload["track_id"])
            audience = self.audience_of_track(tid)
            if labels is None:
                labels = {t.track_id: t.releasable_to for t in tracks}
            # a prediction is released as its track is, and says whose node made it
            payload = {
                **payload,
                "releasable_to": sorted(labels.get(tid, PUBLIC)),
                "originator": self.settings.node.partner,
            }
            self.store.write_prediction(tid, float(payload["time_s"]), payload, audience)
            self.stats.predictions_stored += 1
            if "error" not in payload:
                self.predictions[tid] = payload
            self.bus.publish(
                "predictions",
                {
                    "track_id": tid,
                    "time_s": float(payload["time_s"]),
                    "audience": audience,
                    "payload": payload,
                },
            )
        self.predictor.schedule(time_s, tracks)

    def _alerts(self, view: View, time_s: float, tracks: Sequence[Track]) -> None:
        alerts = view.alerts.evaluate(time_s, tracks, self.predictions)
        incidents = list(view.alerts.last_incidents)
        if not alerts and not incidents:
            return
        labels = {t.track_id: t.releasable_to for t in tracks}
        alerts = [self._mark(view, a, labels) for a in alerts]
        incidents = [self._mark(view, i, labels) for i in incidents]
        by_id = {i.incident_id: i for i in incidents}
        for a in alerts:
            self.store.write_alert(a)
            self.bus.publish("alerts", alert_to_json(a))
            if not view.index:  # only the node's own picture notifies
                self.notifier.notify(a, by_id.get(a.incident_id or ""))
        for inc in incidents:
            self.store.write_incident(inc)
            self.bus.publish("incidents", incident_to_json(inc))
        self.stats.alerts += len(alerts)
        self._save_alerts()

    def _mark(self, view: View, item: Any, labels: Mapping[int, frozenset[str]]) -> Any:
        """An alert or incident with its picture and the meet of its tracks' labels."""
        ids = [item.track_id] if isinstance(item, Alert) else list(item.track_ids)
        label = meet_all(labels[t] for t in ids if t is not None and t in labels)
        if isinstance(item, Alert) and item.geofence_id is not None:
            for fence in view.alerts.geofences:
                if fence.geofence_id == item.geofence_id:
                    label = meet(label, fence.releasable_to)
        return replace(
            item, audience=view.audience, releasable_to=label, originator=self.settings.node.partner
        )

    # ------------------------------------------------------------------ operator actions

    def acknowledge(self, alert_id: str, who: str, audience: str = "") -> Alert:
        """Acknowledge an alert of ``audience``'s picture (its incident moves to ``tracking``);
        stored, audited, published. Raises KeyError for an alert unknown in that picture,
        ValueError when not allowed."""
        with self._lock:
            try:
                view = self.view(audience)
                incident = view.alerts.acknowledge(alert_id, who, self.clock())
                alert = view.alerts.book.alert(alert_id)
            except (UnknownIdError, KeyError):
                raise KeyError(alert_id) from None
            stored = self.store.alert(alert_id)
            alert = replace(
                alert,
                audience=view.audience,
                releasable_to=stored.releasable_to if stored else PUBLIC,
                originator=self.settings.node.partner,
            )
            incident = self._restamp(view, incident)
            self._operator_change(
                alert, incident, who, "acknowledge", {"alert_id": alert_id, "audience": audience}
            )
            return alert

    def resolve(self, incident_id: str, who: str, note: str = "", audience: str = "") -> Incident:
        """Resolve an incident of ``audience``'s picture with a note; stored, audited, published."""
        with self._lock:
            try:
                view = self.view(audience)
                incident = view.alerts.resolve(incident_id, who, self.clock(), note)
            except (UnknownIdError, KeyError):
                raise KeyError(incident_id) from None
            incident = self._restamp(view, incident)
            details = {"incident_id": incident_id, "note": note, "audience": audience}
            self._operator_change(None, incident, who, "resolve", details)
            return incident

    def _restamp(self, view: View, incident: Incident) -> Incident:
        stored = self.store.incident(incident.incident_id)
        return replace(
            incident,
            audience=view.audience,
            releasable_to=stored.releasable_to if stored else PUBLIC,
            originator=self.settings.node.partner,
        )

    def _operator_change(
        self, alert: Alert | None, incident: Incident, who: str, action: str, details: dict[str, Any]
    ) -> None:
        if alert is not None:
            self.store.write_alert(alert)
            self.bus.publish("alerts", alert_to_json(alert))
        self.store.write_incident(incident)
        self.store.audit(who, action, details)
        self.bus.publish("incidents", incident_to_json(incident))
        self._save_alerts()

    def geofences_changed(self) -> None:
        """The API changed the stored geofences: the alert rules use the new set from now on."""
        with self._lock:
            fences = self.store.geofences()
            for view in self.views:
                view.alerts.set_geofences(
                    [g for g in fences if not view.audience or visible(g.releasable_to, view.audience)]
                )
            if self.predictor is not None:
                self.predictor.set_geofences(self.alerts.geofences)

    def _retention(self, time_s: float) -> None:
        """Remove rows older than the store's retention, every ``retention.every_s`` of data time."""
        every = self.settings.retention.every_s
        if not math.isfinite(self._retention_due_s):
            self._retention_due_s = time_s + every
        if time_s < self._retention_due_s:
            return
        self._retention_due_s = time_s + every
        deleted = self.store.apply_retention(time_s)
        self.stats.retention_runs += 1
        self.stats.rows_expired += int(sum(deleted.values()))
        if any(deleted.values()):
            log.info("retention at %.0f: removed %s", time_s, {k: v for k, v in deleted.items() if v})

    # ------------------------------------------------------------------ state

    def save_state(self) -> None:
        """Snapshot the tracker (and what goes with it) into the store."""
        with self._lock:
            blob = pickle.dumps(
                {
                    "version": STATE_VERSION,
                    "time_s": self.stats.last_time_s,
                    "views": {
                        v.audience: {
                            "index": v.index,
                            "tracker": v.tracker,
                            "categories": v.categories,
                            "live_ids": v.live_ids,
                        }
                        for v in self.views
                    },
                    "sensor_labels": self.sensor_labels,
                },
                protocol=pickle.HIGHEST_PROTOCOL,
            )
            self.store.save_state(TRACKER_STATE_KEY, blob)
            self.stats.snapshots += 1

    def _save_alerts(self) -> None:
        doc = {
            "engine": self.alerts.snapshot(),
            "engines": {v.audience: v.alerts.snapshot() for v in self.views[1:]},
            "predictions": self.predictions,
        }
        self.store.save_state(ALERTS_STATE_KEY, json.dumps(doc, allow_nan=True).encode())

    def _restore(self) -> None:
        blob = self.store.load_state(ALERTS_STATE_KEY)
        if blob:
            doc = json.loads(blob)
            self.alerts.restore(doc["engine"])
            for view in self.views[1:]:
                if view.audience in doc.get("engines", {}):
                    view.alerts.restore(doc["engines"][view.audience])
            self.predictions = {int(k): v for k, v in doc.get("predictions", {}).items()}
        blob = self.store.load_state(TRACKER_STATE_KEY)
        if not blob:
            return  # a fresh pipeline (observations stored by other tools are not replayed)
        snap = pickle.loads(blob)
        if snap.get("version") != STATE_VERSION:
            log.warning(
                "stored tracker state has version %s, not %s: starting afresh",
                snap.get("version"),
                STATE_VERSION,
            )
            return
        stored = snap["views"]
        blocks = {a: int(d["index"]) for a, d in stored.items()}
        for view in self.views:
            d = stored.get(view.audience)
            if d is None:
                continue
            view.index = blocks[view.audience]
            view.tracker = d["tracker"]
            view.tracker.sensors.update(self.registry.sensors)
            view.categories = dict(d["categories"])
            view.live_ids = np.asarray(d["live_ids"], dtype=np.int64)
        for view in self.views:  # a partner added since the snapshot: a fresh picture, a free block
            if view.audience not in stored:
                view.index = (
                    max([*blocks.values(), *(v.index for v in self.views if v.audience in stored)]) + 1
                )
                blocks[view.audience] = view.index
                view.tracker._next_id = view.index * ID_BLOCK + 1
                view.tracker.identities = self.tracker.identities
        for sensor_id, label in dict(snap.get("sensor_labels") or {}).items():
            self.sensor_labels[sensor_id] = meet(self.sensor_labels.get(sensor_id, PUBLIC), label)
        since = float(snap["time_s"])
        self.stats.restored_from_s = self.stats.last_time_s = since
        # replay what the store committed after the snapshot, a page at a time
        from stratowatch.ingest.replay import steps

        offset = 0
        while True:
            page = self.store.observations(t0=since, limit=REPLAY_PAGE, offset=offset)
            offset += len(page)
            pending = sorted((o for o in page if o.time_s > since), key=lambda o: o.time_s)
            for t, chunk in steps(pending, self.settings.pipeline.step_s):
                batch = ObservationBatch.from_observations(chunk, self.tracker.identities)
                codes = self.labels.codes(o.releasable_to for o in chunk)
                for view in self.views:
                    sub = (
                        batch.take(self.labels.visible_mask(view.audience, codes)) if view.audience else batch
                    )
                    view.tracker.step_batch(t, sub)
                self.stats.last_time_s = max(self.stats.last_time_s, t)
            self.stats.observations_replayed += len(pending)
            if len(page) < REPLAY_PAGE:
                break
        if self.stats.observations_replayed:
            log.info(
                "resumed from the snapshot at %.3f: replayed %d stored observations after it",
                since,
                self.stats.observations_replayed,
            )

    # ------------------------------------------------------------------ health, shutdown

    def health(self) -> dict[str, Any]:
        st = self.stats
        p = self.predictor
        return {
            "ok": True,
            "steps": st.steps,
            "tracks": st.tracks,
            "last_time_s": st.last_time_s,
            "last_step_ms": 1000.0 * st.last_step_s,
            "observations_committed": st.observations_committed,
            "observations_replayed": st.observations_replayed,
            "predictions_in_flight": p.in_flight if p else 0,
            "wind_field": self.winds.source if self.winds is not None else None,
            "counters": {
                "stratowatch_observations_ingested_total": (
                    "Observations committed to the store by the pipeline.",
                    st.observations_committed,
                ),
                "stratowatch_pipeline_steps_total": ("Pipeline steps.", st.steps),
                "stratowatch_alerts_total": ("Alerts raised or changed.", st.alerts),
                "stratowatch_predictions_total": ("Predictions stored.", st.predictions_stored),
                "stratowatch_pipeline_busy_seconds_total": ("Seconds spent in pipeline steps.", st.busy_s),
            },
        }

    def wait_for_predictions(self, timeout_s: float = 60.0) -> None:
        """Block until the predictions in flight are done (tests, the end of a replay)."""
        if self.predictor is not None:
            self.predictor.wait(timeout_s)

    def close(self) -> None:
        """Snapshot, stop the workers and the notifier (the store is the caller's)."""
        with self._lock:
            if self.stats.steps:
                self.save_state()
            if self.predictor is not None:
                self.predictor.close()
            close = getattr(self.notifier, "close", None)
            if close is not None:
                close()
