"""The live stream (SSE) against a real uvicorn server and an httpx streaming client."""

from __future__ import annotations

import json
import time
from collections.abc import Iterator
from typing import Any

import httpx
import pytest
from api_helpers import live_server, make_track

from auth_helpers import bearer
from stratowatch.api import create_app
from stratowatch.service.bus import InProcessBus
from stratowatch.service.pipeline import Pipeline
from stratowatch.service.serialize import track_to_json

#: The bearer header of the test's admin (set by the server fixture).
AUTH: dict[str, str] = {}


def sse_messages(lines: Iterator[str]) -> Iterator[dict[str, Any]]:
    """Parse an SSE line stream into messages; comments come as {"comment": text}."""
    message: dict[str, Any] = {}
    for line in lines:
        if line == "":
            if message:
                yield message
            message = {}
        elif line.startswith(":"):
            yield {"comment": line[1:].strip()}
        else:
            key, _, value = line.partition(":")
            message[key] = value[1:] if value.startswith(" ") else value


@pytest.fixture
def server(pipeline: Pipeline) -> Iterator[tuple[str, Any]]:
    app = create_app(pipeline, heartbeat_s=0.3, freeze_gc=False)
    AUTH.clear()
    AUTH.update(bearer(app))
    with live_server(app) as url:
        yield url, app


def test_stream_delivers_published_events_in_order(server: tuple[str, Any], bus: InProcessBus) -> None:
    url, app = server
    tracks = [make_track(7), make_track(8, alt_m=9_000.0)]
    event = {"time_s": 1_675_300_000.0, "tracks": [track_to_json(t) for t in tracks]}
    baseline = bus.subscribers  # the API's own live picture follows the bus too
    with (
        httpx.Client(timeout=10, headers=AUTH) as client,
        client.stream("GET", f"{url}/api/v1/stream", params={"topics": "tracks,alerts"}) as r,
    ):
        assert r.status_code == 200
        assert r.headers["content-type"].startswith("text/event-stream")
        messages = sse_messages(r.iter_lines())
        assert next(messages) == {"comment": "connected"}
        assert app.state.stream_clients == 1
        bus.publish("incidents", {"incident_id": "not-subscribed"})
        bus.publish("tracks", event)
        bus.publish("alerts", {"alert_id": "a1", "rule": "geofence_enter"})
        got: list[dict[str, Any]] = []
        while len(got) < 2:
            m = next(messages)
            if "comment" not in m:
                got.append(m)
    assert [m["event"] for m in got] == ["tracks", "alerts"]
    assert [int(m["id"]) for m in got] == [1, 2]
    assert json.loads(got[0]["data"]) == event
    assert json.loads(got[1]["data"])["alert_id"] == "a1"
    deadline = time.monotonic() + 5
    while (bus.subscribers > baseline or app.state.stream_clients) and time.monotonic() < deadline:
        time.sleep(0.05)
    assert bus.subscribers == baseline and app.state.stream_clients == 0  # closed with the connection


def test_stream_heartbeat_when_idle(server: tuple[str, Any]) -> None:
    url, _ = server
    with httpx.Client(timeout=10, headers=AUTH) as client, client.stream("GET", f"{url}/api/v1/stream") as r:
        messages = sse_messages(r.iter_lines())
        t0 = time.monotonic()
        assert next(messages) == {"comment": "connected"}
        assert next(messages) == {"comment": "heartbeat"}
        assert next(messages) == {"comment": "heartbeat"}
        assert 0.5 <= time.monotonic() - t0 < 5


def test_stream_rejects_unknown_topics(server: tuple[str, Any], bus: InProcessBus) -> None:
    url, _ = server
    baseline = bus.subscribers
    r = httpx.get(f"{url}/api/v1/stream", params={"topics": "tracks,weather"}, headers=AUTH, timeout=10)
    assert r.status_code == 400
    assert r.json()["error"]["details"] == {"parameter": "topics"}
    assert bus.subscribers == baseline


def test_slow_client_is_told_how_many_events_it_lost(
    server: tuple[str, Any], bus: InProcessBus, monkeypatch: pytest.MonkeyPatch
) -> None:
    from stratowatch.api.routers import stream

    monkeypatch.setattr(stream, "QUEUE_EVENTS", 2)
    url, app = server
    with (
        httpx.Client(timeout=10, headers=AUTH) as client,
        client.stream("GET", f"{url}/api/v1/stream?topics=alerts") as r,
    ):
        messages = sse_messages(r.iter_lines())
        assert next(messages) == {"comment": "connected"}
        for i in range(200):  # in one burst: far faster than the stream drains a queue of two
            bus.publish("alerts", {"alert_id": f"a{i}"})
        dropped, delivered = 0, []
        while dropped + len(delivered) < 200:
            m = next(messages)
            if m.get("event") == "dropped":
                dropped += json.loads(m["data"])["dropped"]
            elif m.get("event") == "alerts":
                delivered.append(int(json.loads(m["data"])["alert_id"][1:]))
    assert dropped >= 1  # the queue held two: events were lost, and the client was told how many
    assert delivered == sorted(set(delivered)) and delivered[-1] == 199  # in order; the newest arrives
    assert app.state.stream_dropped == dropped
