"""``stratowatch serve`` as a real process: config file, a live TCP feed, the API answering,
clean shutdown on SIGTERM; bad settings fail at start-up naming the key; ``demo`` serves."""

from __future__ import annotations

import json
import math
import os
import signal
import socket
import subprocess
import sys
import threading
import time
import urllib.request
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest

from auth_helpers import config_bearer

pytestmark = pytest.mark.slow


def _free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return int(s.getsockname()[1])


def _get(url: str, headers: dict[str, str] | None = None) -> Any:
    with urllib.request.urlopen(urllib.request.Request(url, headers=headers or {}), timeout=5) as r:
        return json.loads(r.read())


def _wait_for(
    url: str, ok: Any, timeout_s: float, proc: subprocess.Popen[str], headers: dict[str, str] | None = None
) -> Any:
    deadline = time.monotonic() + timeout_s
    last: Any = None
    while time.monotonic() < deadline:
        if proc.poll() is not None:
            out = proc.stdout.read() if proc.stdout else ""
            raise AssertionError(f"the service exited with {proc.returncode}: {out}")
        try:
            last = _get(url, headers)
            if ok(last):
                return last
        except OSError:
            pass
        time.sleep(0.3)
    raise AssertionError(f"{url}: condition not met in {timeout_s} s; last answer {last}")


def _sbs_lines() -> list[str]:
    """Three aircraft flying east at 49 N, 1 Hz for 90 s, as a receiver's SBS port sends them."""
    lines = []
    for k in range(90):
        for j, icao in enumerate(("A1B2C3", "C0FFEE", "4CA2D6")):
            lat = 49.0 + 0.3 * j
            lon = -112.0 + k * 220.0 / (111_320.0 * math.cos(math.radians(lat)))
            hhmmss = f"18:{k // 60:02d}:{k % 60:02d}.000"
            fields = ["MSG", "3", "1", "1", icao, "1", "2023/02/01", hhmmss, "2023/02/01", hhmmss]
            fields += [
                "",
                str(35000 + 1000 * j),
                "",
                "",
                f"{lat:.5f}",
                f"{lon:.5f}",
                "",
                "",
                "0",
                "0",
                "0",
                "0",
            ]
            lines.append(",".join(fields))
    return lines


@pytest.fixture
def feed_server() -> Iterator[tuple[int, int]]:
    """A TCP server that sends the SBS lines to the first client, then keeps the line open."""
    lines = _sbs_lines()
    srv = socket.socket()
    srv.bind(("127.0.0.1", 0))
    srv.listen(1)
    port = srv.getsockname()[1]
    stop = threading.Event()

    def run() -> None:
        srv.settimeout(0.5)
        while not stop.is_set():
            try:
                conn, _ = srv.accept()
            except TimeoutError:
                continue
            with conn:
                conn.sendall(("\r\n".join(lines) + "\r\n").encode())
                stop.wait()
            return

    thread = threading.Thread(target=run, daemon=True)
    thread.start()
    yield port, len(lines)
    stop.set()
    thread.join(5)
    srv.close()


def _serve(args: list[str], cwd: Path) -> subprocess.Popen[str]:
    return subprocess.Popen(
        [sys.executable, "-m", "stratowatch", *args],
        cwd=cwd,
        stdout=subprocess.PIPE,
        stderr=subprocess.STDOUT,
        text=True,
        env={**os.environ, "PYTHONUNBUFFERED": "1"},
    )


def test_serve_ingests_a_live_feed_and_answers_the_api(tmp_path: Path, feed_server: tuple[int, int]) -> None:
    feed_port, n_lines = feed_server
    api_port = _free_port()
    config = tmp_path / "stratowatch.toml"
    config.write_text(
        f"""
store_url = "sqlite:///{tmp_path / "sw.db"}"
[api]
port = {api_port}
[[sources]]
name = "receiver"
kind = "tcp"
format = "sbs"
port = {feed_port}
sensor_id = "adsb-test"
[predictions]
enabled = false
""",
        encoding="utf-8",
    )
    auth = config_bearer(config)
    proc = _serve(["serve", "--config", str(config)], tmp_path)
    try:
        base = f"http://127.0.0.1:{api_port}"
        health = _wait_for(f"{base}/health", lambda h: h["counts"]["observations"] == n_lines, 40, proc, auth)
        assert health["status"] == "ok"
        assert health["pipeline"]["observations_committed"] == n_lines
        tracks = _wait_for(f"{base}/api/v1/tracks", lambda t: len(t["items"]) == 3, 20, proc, auth)
        by_icao = {t["identities"][0]: t for t in tracks["items"]}
        assert set(by_icao) == {"icao:A1B2C3", "icao:C0FFEE", "icao:4CA2D6"}
        for t in by_icao.values():
            assert t["classification"]["label"] == "aircraft"
            assert t["velocity_enu_mps"][0] == pytest.approx(220.0, abs=15.0)
            assert t["sensors"] == ["adsb-test"]
    finally:
        proc.send_signal(signal.SIGTERM)
        out, _ = proc.communicate(timeout=30)
    assert proc.returncode == 0, out
    assert f"stratowatch serving on http://127.0.0.1:{api_port}" in out
    assert "Traceback" not in out


def test_serve_rejects_bad_settings_naming_the_key(tmp_path: Path) -> None:
    config = tmp_path / "bad.toml"
    config.write_text(
        '[[sources]]\nname = "x"\nkind = "tcp"\nformat = "sbs"\nport = "thirty"\n', encoding="utf-8"
    )
    res = subprocess.run(
        [sys.executable, "-m", "stratowatch", "serve", "--config", str(config)],
        capture_output=True,
        text=True,
        timeout=60,
        env={**os.environ, "STRATOWATCH_API__PORT": "1"},
    )
    assert res.returncode == 2
    assert f"{config}: sources[0].port: Input should be a valid integer" in res.stderr
    assert "Traceback" not in res.stderr
    res = subprocess.run(
        [sys.executable, "-m", "stratowatch", "serve"],
        capture_output=True,
        text=True,
        timeout=60,
        env={**os.environ, "STRATOWATCH_API__PORT": "http"},
        cwd=tmp_path,
    )
    assert res.returncode == 2 and "api.port: Input should be a valid integer" in res.stderr


def test_demo_serves_the_episode_through_the_pipeline(tmp_path: Path) -> None:
    port = _free_port()
    store = f"sqlite:///{tmp_path / 'demo.db'}"
    auth = config_bearer(store_url=store)
    proc = _serve(
        ["demo", "--hours", "0.25", "--aircraft", "2", "--port", str(port), "--speed", "0", "--store", store],
        tmp_path,
    )
    try:
        base = f"http://127.0.0.1:{port}"
        health = _wait_for(f"{base}/health", lambda h: h["pipeline"]["steps"] >= 400, 60, proc, auth)
        assert health["counts"]["observations"] == health["pipeline"]["observations_committed"] > 0
        tracks = _get(f"{base}/api/v1/tracks?limit=100", auth)["items"]
        balloons = [t for t in tracks if t["classification"] and t["classification"]["label"] == "balloon"]
        assert balloons and all(t["alt_m"] > 15_000 for t in balloons)
    finally:
        proc.send_signal(signal.SIGTERM)
        out, _ = proc.communicate(timeout=30)
    assert "Demo episode: 2 balloons, 2 aircraft" in out
    assert "winds: " in out and f"serving on http://127.0.0.1:{port}" in out
