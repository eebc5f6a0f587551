"""The console in real headless Chromium against the live service: it loads with no internet,
tracks appear and move as observations arrive, a selected balloon shows its cones, acknowledging
an alert and resolving an incident update the lists, filters narrow the picture and the time
slider replays the stored history."""

from __future__ import annotations

import math
from typing import Any

import pytest

from stratowatch.model import ObjectClass

pytestmark = pytest.mark.filterwarnings("ignore::DeprecationWarning")

SHOWN = """() => [...window.stratowatch.state.shown.values()].map(
    t => [t.track_id, t.lat_deg, t.lon_deg, t.alt_m, t.time_s])"""
SOURCE = """async (name) => (await window.stratowatch.map.getSource(name).getData()).features"""
COUNT = """async () => (await window.stratowatch.map.getSource('tracks').getData()).features.length === """
BALLOONS = "[...window.stratowatch.state.shown.values()].filter(t => t.classification?.label === 'balloon')"


def _shown(page: Any) -> dict[int, tuple[float, float, float, float]]:
    return {int(r[0]): (r[1], r[2], r[3], r[4]) for r in page.evaluate(SHOWN)}


def _wait_time(page: Any, time_s: float) -> None:
    page.wait_for_function(f"window.stratowatch.state.timeS >= {time_s}", timeout=20_000)


def test_page_loads_offline_and_tracks_appear_and_move(console: Any, service: Any) -> None:
    page, outside, errors = console
    # the node shares with CAN only: the banner says so, and USA's radar sites are not shown
    assert page.inner_text("#banner") == "REL TO CAN"
    # the base map comes from the package: land, borders and states are loaded on the map
    page.wait_for_function(
        "['land','borders','states'].every(s => window.stratowatch.map.isSourceLoaded(s))", timeout=20_000
    )
    assert len(page.evaluate(SOURCE, "land")[0]["geometry"]["coordinates"]) > 1000
    # sensor sites and geofences from the API
    shown_sites = {f["properties"]["id"] for f in page.evaluate(SOURCE, "sensors")}
    sited = [s for s in service.store.sensors() if s.has_site]
    assert shown_sites == {s.sensor_id for s in sited if s.releasable_to & {"PUBLIC", "CAN"}}
    assert any(s.owner == "USA" for s in sited) and shown_sites
    assert len(page.evaluate(SOURCE, "geofences")) == len(service.store.geofences()) > 0

    service.feed_until(0.3)
    t1 = service.pipeline.stats.last_time_s
    _wait_time(page, t1)
    first = _shown(page)
    live = {t.track_id: t for t in service.store.tracks(limit=None) if t.time_s == t1}
    assert first and set(first) == set(live)
    for tid, (lat, lon, alt, _) in first.items():
        assert (lat, lon, alt) == pytest.approx((live[tid].lat_deg, live[tid].lon_deg, live[tid].alt_m))
    page.wait_for_function(f"document.querySelectorAll('#track-list [data-track]').length === {len(first)}")

    service.feed_until(0.6)
    t2 = service.pipeline.stats.last_time_s
    _wait_time(page, t2)
    second = _shown(page)
    both = set(first) & set(second)
    moved = [
        tid
        for tid in both
        if abs(first[tid][0] - second[tid][0]) + abs(first[tid][1] - second[tid][1]) > 1e-3
    ]
    assert len(moved) >= max(1, len(both) // 2), (first, second)
    # the map's track layer holds the new picture (one point per track) and the trails
    page.wait_for_function(
        """async () => {
            const shown = window.stratowatch.state.shown;
            const fs = (await window.stratowatch.map.getSource('tracks').getData()).features;
            return fs.length === shown.size && fs.every(f => {
                const t = shown.get(f.properties.id);
                return t && t.lat_deg === f.geometry.coordinates[1] && t.alt_m === f.properties.alt; });
        }""",
        timeout=10_000,
    )
    feats = page.evaluate(SOURCE, "tracks")
    assert {f["properties"]["id"] for f in feats} == set(second)
    # icons by class, coloured by altitude
    tracks = {t.track_id: t for t in service.store.tracks(limit=None)}
    for f in feats:
        t = tracks[f["properties"]["id"]]
        label = t.classification.label.name.lower() if t.classification else "unknown"
        assert f["properties"]["cls"] == label
    assert len(page.evaluate(SOURCE, "trails")) >= len(moved)
    assert outside == [], f"the page reached outside 127.0.0.1: {outside}"
    assert errors == []


def test_selecting_a_balloon_shows_its_cone(console: Any, service: Any) -> None:
    page, outside, errors = console
    service.feed_until(1.0)
    service.pipeline.wait_for_predictions(120.0)
    last = service.scenario.scans[-1][0]
    service.pipeline.process(last + 1.0, [])  # collects the finished predictions
    _wait_time(page, last + 1.0)
    balloons = [
        t
        for t in service.store.tracks(limit=None)
        if t.classification is not None
        and t.classification.label == ObjectClass.BALLOON
        and service.store.prediction(t.track_id) is not None
        and "error" not in service.store.prediction(t.track_id)
    ]
    assert balloons, "the episode has a predicted balloon"
    tid = balloons[0].track_id
    stored = service.store.prediction(tid)
    page.click(f"#track-list [data-track='{tid}']")
    page.wait_for_function(
        f"window.stratowatch.state.prediction && window.stratowatch.state.prediction.track_id === {tid}",
        timeout=15_000,
    )
    page.wait_for_function(
        "async () => (await window.stratowatch.map.getSource('prediction').getData()).features.length > 0"
    )
    feats = page.evaluate(SOURCE, "prediction")
    cones = [f for f in feats if f["properties"]["kind"] == "cone"]
    n_cones = sum(1 for f in stored["geojson"]["features"] if f["properties"]["kind"] == "cone")
    assert len(cones) == n_cones > 0
    assert {f["properties"]["probability"] for f in cones} == {0.5, 0.9}
    rings = {round(f["properties"]["lead_h"]) for f in cones if f["properties"]["ring"]}
    assert rings == {6, 12, 24, 48, 72}
    kinds = {f["properties"]["kind"] for f in feats}
    assert {"median_path", "deterministic_path"} <= kinds
    # the detail panel: classification with its reasons, the track's history, the arrivals
    detail = page.inner_text("#detail")
    assert f"Track {tid}" in detail and "balloon" in detail
    for reason in balloons[0].classification.reasons:
        assert reason in detail
    for a in stored["arrivals"]:
        assert a["name"] in page.inner_text("#arrivals")
    n_states = len(service.store.track_history(tid))
    page.wait_for_function(f"window.stratowatch.state.history.length === {n_states}", timeout=15_000)
    page.wait_for_function(
        "async () => (await window.stratowatch.map.getSource('history').getData()).features.length === 1"
    )
    # the back-trajectory: a backward ensemble from the track's state, with its source regions
    page.wait_for_function("window.stratowatch.state.backtrack !== null", timeout=15_000)
    back = page.evaluate(SOURCE, "backtrack")
    median = next(f for f in back if f["properties"]["kind"] == "median_path")
    assert median["properties"]["backward"] is True
    line = median["geometry"]["coordinates"][0]
    now = service.store.track(tid)
    assert line[0] == pytest.approx([now.lon_deg, now.lat_deg], abs=1e-3)  # starts where the track is
    assert {f["properties"]["probability"] for f in back if f["properties"]["kind"] == "cone"} == {0.5, 0.9}
    assert "back 24 h" in page.inner_text("#back")
    assert outside == [] and errors == []


def test_acknowledging_an_alert_and_resolving_an_incident_update_the_lists(
    console: Any, service: Any
) -> None:
    page, outside, errors = console
    service.feed_until(1.0)
    open_alerts = service.store.alerts(acknowledged=False, limit=None)
    assert open_alerts
    page.wait_for_function(
        f"document.querySelectorAll('#alert-list [data-ack]').length === {len(open_alerts)}", timeout=10_000
    )
    assert page.inner_text("#alert-count") == str(len(open_alerts))
    target = page.get_attribute("#alert-list [data-ack]", "data-ack")
    page.fill("#operator", "duty officer")
    page.click(f"#alert-list [data-ack='{target}']")
    page.wait_for_function(f"document.querySelector(\"#alert-list [data-alert='{target}']\") === null")
    assert page.inner_text("#alert-count") == str(len(open_alerts) - 1)
    stored = service.store.alert(target)
    assert stored is not None and stored.acknowledged_by == "duty officer"
    page.check("#show-acked")
    assert "acknowledged by duty officer" in page.inner_text(f"#alert-list [data-alert='{target}']")

    incident = next(i for i in service.store.incidents(limit=None) if i.status != "resolved")
    page.once("dialog", lambda d: d.accept("NWS radiosonde"))
    page.click(f"#incident-list [data-resolve='{incident.incident_id}']")
    page.wait_for_function(
        f"document.querySelector(\"#incident-list [data-resolve='{incident.incident_id}']\") === null"
    )
    resolved = service.store.incident(incident.incident_id)
    assert resolved is not None and resolved.status == "resolved"
    assert "resolved" in page.inner_text(f"#incident-list [data-incident='{incident.incident_id}']")
    assert outside == [] and errors == []


def test_filters_narrow_the_map_and_the_list(console: Any, service: Any) -> None:
    page, _, errors = console
    service.feed_until(1.0)
    n_all = page.evaluate("window.stratowatch.state.shown.size")
    balloons = page.evaluate(f"{BALLOONS}.length")
    assert 0 < balloons < n_all
    page.select_option("#f-class", "balloon")
    page.wait_for_function(f"document.querySelectorAll('#track-list [data-track]').length === {balloons}")
    page.wait_for_function(f"{COUNT}{balloons}")
    page.select_option("#f-class", "")
    page.fill("#f-identity", "^icao:")
    icao = sum(
        1
        for t in service.store.tracks(limit=None)
        if any(i.startswith("icao:") for i in t.identities) and t.status.name != "ENDED"
    )
    page.wait_for_function(f"document.querySelectorAll('#track-list [data-track]').length === {icao}")
    page.fill("#f-identity", "")
    page.wait_for_function(f"document.querySelectorAll('#track-list [data-track]').length === {n_all}")
    # partner: the owners of the sensors that saw the track
    owners = {s.sensor_id: s.owner for s in service.store.sensors()}
    live = [t for t in service.store.tracks(limit=None) if t.status.name != "ENDED"]
    partner = sorted({owners[s] for t in live for s in t.sensors if s in owners})[0]
    seen_by = sum(1 for t in live if any(owners.get(s) == partner for s in t.sensors))
    assert seen_by > 0
    page.fill("#f-partner", partner)
    page.wait_for_function(f"document.querySelectorAll('#track-list [data-track]').length === {seen_by}")
    page.fill("#f-partner", "")
    # the export buttons answer files of the picture
    for fmt in ("geojson", "kml", "czml", "csv"):
        href = page.get_attribute(f"#exp-{fmt}", "href")
        status, body = page.evaluate(
            "async (u) => { const r = await fetch(u); return [r.status, await r.text()]; }", href
        )
        assert status == 200 and len(body) > 100, (fmt, status)
    assert errors == []


def test_time_slider_replays_history(console: Any, service: Any) -> None:
    page, outside, errors = console
    service.feed_until(1.0)
    scans = service.scenario.scans
    when = float(scans[len(scans) // 3][0])
    page.evaluate(
        f"""() => {{ const s = document.getElementById('slider'); s.value = '{when}';
                     s.dispatchEvent(new Event('input')); }}"""
    )
    page.wait_for_function(f"window.stratowatch.state.replayS === {when}")
    # each track as it was at that time: its last stored state at or before it
    expected: dict[int, Any] = {}
    for st in service.store.history_in_box(when - 600.0, when, (-90.0, -180.0, 90.0, 180.0)):
        if st.track_id not in expected or st.time_s > expected[st.track_id].time_s:
            expected[st.track_id] = st
    assert expected
    page.wait_for_function(
        f"[...window.stratowatch.state.shown.values()].every(t => t.time_s <= {when}) && "
        f"window.stratowatch.state.shown.size === {len(expected)}",
        timeout=15_000,
    )
    shown = _shown(page)
    for tid, st in expected.items():
        assert shown[tid] == pytest.approx((st.lat_deg, st.lon_deg, st.alt_m, st.time_s))
    live_time = page.evaluate("window.stratowatch.state.timeS")
    assert max(v[3] for v in shown.values()) < live_time
    assert "replay" in page.inner_text("#slider-time")
    # play: the replayed time moves forward by itself
    page.click("#play")
    page.wait_for_function(f"window.stratowatch.state.replayS > {when} + 30", timeout=15_000)
    page.click("#play")  # pause
    page.click("#live")
    page.wait_for_function("window.stratowatch.state.replayS === null")
    assert max(v[3] for v in _shown(page).values()) == live_time
    assert outside == [] and errors == []


def test_uncertainty_ellipses_are_two_sigma(console: Any, service: Any) -> None:
    page, _, errors = console
    service.feed_until(1.0)
    page.click("#live")
    t = max(
        (t for t in service.store.tracks(limit=None) if t.status.name != "ENDED"),
        key=lambda t: t.position_sigma_m[0],
    )
    # close enough that the ellipse is several pixels across (far out it is hidden under the icon)
    page.evaluate(f"window.stratowatch.map.jumpTo({{center: [{t.lon_deg}, {t.lat_deg}], zoom: 12}})")
    page.wait_for_function(
        f"""async () => (await window.stratowatch.map.getSource('ellipses').getData()).features.some(
            f => Math.abs(f.geometry.coordinates[0][0][0] - {t.lon_deg} - 2 * {t.position_sigma_m[0]} /
                 (111320 * Math.cos({t.lat_deg} * Math.PI / 180))) < 1e-9)""",
        timeout=10_000,
    )
    ring = next(
        f["geometry"]["coordinates"][0]
        for f in page.evaluate(SOURCE, "ellipses")
        if abs(f["geometry"]["coordinates"][0][0][1] - t.lat_deg) < 1e-9
        and abs(f["geometry"]["coordinates"][0][0][0] - t.lon_deg) < 0.1
    )
    east_m = max(p[0] - t.lon_deg for p in ring) * 111_320.0 * math.cos(math.radians(t.lat_deg))
    north_m = max(p[1] - t.lat_deg for p in ring) * 110_574.0
    assert east_m == pytest.approx(2 * t.position_sigma_m[0], rel=1e-6)
    assert north_m == pytest.approx(2 * t.position_sigma_m[1], rel=1e-2)  # the ring's 24 vertices
    assert errors == []


def test_tracker_workers_cells_make_one_picture(console: Any, service: Any) -> None:
    """Scaled out, each tracker worker publishes its cell's tracks: the console shows the union
    of every cell's latest, a track handed between cells once, and a whole picture replaces them."""
    from dataclasses import replace

    from stratowatch.service.serialize import track_to_json

    page, _, errors = console
    page.click("#live")
    base = next(t for t in service.store.tracks(limit=None) if t.status.name != "ENDED")
    t0 = float(page.evaluate("window.stratowatch.state.timeS")) + 100.0

    def doc(track_id: int, time_s: float, lon: float) -> dict[str, Any]:
        return track_to_json(replace(base, track_id=track_id, time_s=time_s, lon_deg=lon, audience=""))

    def send(time_s: float, **event: Any) -> None:
        service.pipeline.bus.publish("tracks", {"time_s": time_s, "audience": "", **event})
        _wait_time(page, time_s)

    send(t0, cell=1, tracks=[doc(9001, t0, -100.0), doc(9002, t0, -99.9)])
    send(t0 + 1, cell=2, tracks=[doc(9003, t0 + 1, -90.0)])
    assert set(_shown(page)) == {9001, 9002, 9003}
    # 9002 crosses into cell 2: cell 2 reports it before cell 1's next event leaves it out
    send(t0 + 2, cell=2, tracks=[doc(9003, t0 + 2, -90.0), doc(9002, t0 + 2, -89.5)])
    shown = _shown(page)
    assert set(shown) == {9001, 9002, 9003} and shown[9002][1] == -89.5
    send(t0 + 3, cell=1, tracks=[doc(9001, t0 + 3, -100.0)], handed=[9002])
    assert set(_shown(page)) == {9001, 9002, 9003}
    assert page.evaluate("window.stratowatch.state.trails.get(9002).length") >= 2  # kept across the edge
    send(t0 + 4, tracks=[doc(9100, t0 + 4, -95.0)])  # the single process: a whole picture
    assert set(_shown(page)) == {9100}
    assert errors == []
