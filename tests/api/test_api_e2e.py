"""End to end: ``stratowatch serve`` as a subprocess on a free port, fed SBS over a live TCP
source, answers with the tracks over HTTP.

Two feeds: three synthetic aircraft (always runs) and a real one — the DF17 frames of aircraft
406B90 recorded by TU Delft (pyModeS sample, ../shared/data/adsb), decoded with pyModeS into
SBS position and velocity records, as dump1090's port 30003 would send them (skipped when the
shared data is absent).
"""

from __future__ import annotations

import csv
import datetime as dt
import math
import os
import socket
import subprocess
import sys
import threading
import time
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import httpx
import pytest
from api_helpers import SHARED_DATA, free_port

from auth_helpers import config_bearer

ADSB_SAMPLE = SHARED_DATA / "adsb" / "pymodes_sample_data_adsb.csv"
EHAM = (52.3086, 4.7639)  # reference position for the sample's airborne CPR frames
FT_M = 0.3048


def _stamp(time_s: float) -> tuple[str, str]:
    t = dt.datetime.fromtimestamp(time_s, dt.UTC)
    return t.strftime("%Y/%m/%d"), t.strftime("%H:%M:%S.") + f"{t.microsecond // 1000:03d}"


def sbs_position(icao: str, time_s: float, lat: float, lon: float, alt_ft: float) -> str:
    d, t = _stamp(time_s)
    return f"MSG,3,1,1,{icao},1,{d},{t},{d},{t},,{alt_ft:.0f},,,{lat:.5f},{lon:.5f},,,0,,0,0"


def sbs_velocity(icao: str, time_s: float, speed_kt: float, track_deg: float, vrate_fpm: float) -> str:
    d, t = _stamp(time_s)
    return f"MSG,4,1,1,{icao},1,{d},{t},{d},{t},,,{speed_kt:.0f},{track_deg:.1f},,,{vrate_fpm:.0f},,,,,"


def synthetic_feed(t0: float) -> tuple[list[str], dict[str, tuple[float, float, float]]]:
    """Three aircraft over Montana, one position a second for 24 s from ``t0``; returns the lines
    and each aircraft's last (lat, lon, alt_m)."""
    lines, last = [], {}
    for k in range(24):
        for j, icao in enumerate(("A1B2C3", "A1B2C4", "A1B2C5")):
            lat = 46.0 + j * 0.5 + k * 0.0018  # ~200 m/s northbound
            lon = -111.0 + j * 0.3
            alt_ft = 30_000 + 2_000 * j
            lines.append(sbs_position(icao, t0 + k + 0.1 * j, lat, lon, alt_ft))
            last[f"icao:{icao}"] = (lat, lon, alt_ft * FT_M)
    return lines, last


def real_feed(seconds: float, start_s: float) -> tuple[list[str], tuple[float, float, float]]:
    """The sample's airborne positions (TC 9-18) and velocities (TC 19) of its first ``seconds``
    as SBS lines, and the last decoded position (lat, lon, alt_m). Times are moved to begin at
    ``start_s``, as a receiver forwarding them now would stamp them (a live service judges a
    track by the clock: a 2016 track is long over)."""
    import pyModeS

    lines, last = [], (math.nan, math.nan, math.nan)
    with ADSB_SAMPLE.open(newline="") as f:
        rows = list(csv.reader(f))
    t0 = min(float(r[0]) for r in rows)
    for stamp, msg, icao, tc in rows:
        if float(stamp) >= t0 + seconds:
            continue
        ts = float(stamp) - t0 + start_s
        typecode = int(tc)
        if 9 <= typecode <= 18:
            d = pyModeS.decode(msg, reference=EHAM)
            if d.get("latitude") is None or d.get("altitude") is None:
                continue
            lines.append(sbs_position(icao, ts, d["latitude"], d["longitude"], d["altitude"]))
            last = (d["latitude"], d["longitude"], d["altitude"] * FT_M)
        elif typecode == 19:
            d = pyModeS.decode(msg)
            if d.get("groundspeed") is None:
                continue
            lines.append(sbs_velocity(icao, ts, d["groundspeed"], d["track"], d["vertical_rate"] or 0))
    return lines, last


#: Data seconds sent per wall second; the service steps every 1/SPEED s, so that each pipeline
#: step sees about one second of data, as with a live receiver.
SPEED = 8.0


def by_second(lines: list[str]) -> list[bytes]:
    """The lines grouped by the whole second of their time stamp (fields 7 and 8), in order."""
    groups: dict[str, list[str]] = {}
    for line in lines:
        f = line.split(",")
        groups.setdefault(f"{f[6]} {f[7][:8]}", []).append(line)
    return [("\r\n".join(g) + "\r\n").encode() for _, g in sorted(groups.items())]


class Feeder:
    """A TCP server that sends ``chunks`` to the first client (like dump1090 on port 30003), one
    per 1/SPEED s, and keeps the connection open."""

    def __init__(self, chunks: list[bytes]) -> None:
        self.chunks = chunks
        self.sent = threading.Event()
        self.sock = socket.create_server(("127.0.0.1", 0))
        self.port = int(self.sock.getsockname()[1])
        self.connected = threading.Event()
        self._stop = threading.Event()
        self._thread = threading.Thread(target=self._run, daemon=True)
        self._thread.start()

    def _run(self) -> None:
        self.sock.settimeout(0.2)
        while not self._stop.is_set():
            try:
                conn, _ = self.sock.accept()
            except TimeoutError:
                continue
            self.connected.set()
            with conn:
                for chunk in self.chunks:
                    conn.sendall(chunk)
                    if self._stop.wait(1.0 / SPEED):
                        return
                self.sent.set()
                self._stop.wait()
            return

    def close(self) -> None:
        self._stop.set()
        self._thread.join(5)
        self.sock.close()


def write_config(tmp: Path, feed_port: int, api_port: int) -> Path:
    path = tmp / "stratowatch.toml"
    path.write_text(
        f"""store_url = "sqlite:///{tmp / "sw.db"}"

[api]
host = "127.0.0.1"
port = {api_port}

[predictions]
enabled = false

[pipeline]
step_s = {1.0 / SPEED}

[[sources]]
name = "adsb-feed"
kind = "tcp"
format = "sbs"
sensor_id = "adsb-1"
host = "127.0.0.1"
port = {feed_port}
""",
        encoding="utf-8",
    )
    return path


@pytest.fixture
def serve(tmp_path: Path) -> Iterator[Any]:
    """A function starting ``stratowatch serve`` on a feed; yields (base URL, feeder)."""
    started: list[tuple[subprocess.Popen[bytes], Feeder, Any]] = []

    def start(lines: list[str]) -> tuple[str, Feeder]:
        feeder = Feeder(by_second(lines))
        api_port = free_port()
        config = write_config(tmp_path, feeder.port, api_port)
        auth = config_bearer(config)
        log = (tmp_path / "serve.log").open("wb")
        env = {**os.environ, "PYTHONUNBUFFERED": "1"}
        env = {k: v for k, v in env.items() if not k.startswith("STRATOWATCH_")}
        proc = subprocess.Popen(
            [sys.executable, "-m", "stratowatch", "serve", "--config", str(config)],
            cwd=tmp_path,
            stdout=log,
            stderr=subprocess.STDOUT,
            env=env,
        )
        started.append((proc, feeder, log))
        base = f"http://127.0.0.1:{api_port}"
        deadline = time.monotonic() + 90
        while True:
            if proc.poll() is not None:
                pytest.fail(f"serve exited {proc.returncode}: {(tmp_path / 'serve.log').read_text()[-3000:]}")
            try:
                if httpx.get(f"{base}/health", timeout=2).status_code == 200:
                    return base, feeder, auth
            except httpx.HTTPError:
                pass
            if time.monotonic() > deadline:
                pytest.fail(f"serve did not answer /health: {(tmp_path / 'serve.log').read_text()[-3000:]}")
            time.sleep(0.2)

    yield start
    for proc, feeder, log in started:
        proc.terminate()
        try:
            proc.wait(20)
        except subprocess.TimeoutExpired:
            proc.kill()
            proc.wait(5)
        feeder.close()
        log.close()


def wait_for_tracks(
    base: str, identities: set[str], n_observations: int, auth: dict[str, str]
) -> dict[str, dict[str, Any]]:
    """Poll until every identity has a live track and the store holds every position."""
    deadline = time.monotonic() + 60
    while True:
        tracks = httpx.get(f"{base}/api/v1/tracks", params={"limit": 1000}, headers=auth, timeout=5).json()[
            "items"
        ]
        by_identity = {i: t for t in tracks for i in t["identities"] if i in identities}
        stored = httpx.get(
            f"{base}/api/v1/observations", params={"limit": 1}, headers=auth, timeout=5
        ).json()["total"]
        if set(by_identity) == identities and stored == n_observations:
            return by_identity
        if time.monotonic() > deadline:
            pytest.fail(
                f"tracks for {sorted(by_identity)} of {sorted(identities)}; {stored}/{n_observations} stored"
            )
        time.sleep(0.3)


def near_m(a: tuple[float, float], b: tuple[float, float]) -> float:
    dlat = math.radians(a[0] - b[0])
    dlon = math.radians(a[1] - b[1]) * math.cos(math.radians(a[0]))
    return 6_371_000.0 * math.hypot(dlat, dlon)


def test_serve_tracks_a_synthetic_sbs_feed(serve: Any) -> None:
    lines, last = synthetic_feed(float(int(time.time())))
    base, feeder, auth = serve(lines)
    assert feeder.connected.wait(30), "serve never connected to the feed"
    tracks = wait_for_tracks(base, set(last), n_observations=len(lines), auth=auth)
    for identity, (lat, lon, alt_m) in last.items():
        t = tracks[identity]
        assert near_m((t["lat_deg"], t["lon_deg"]), (lat, lon)) < 1_000, identity
        assert abs(t["alt_m"] - alt_m) < 100, identity
        assert t["status"] in ("confirmed", "coasting")
    public = httpx.get(f"{base}/health").json()
    assert public["status"] == "ok" and "counts" not in public  # sizes are not for strangers
    health = httpx.get(f"{base}/health", headers=auth).json()
    assert health["status"] == "ok" and health["counts"]["observations"] == len(lines)
    metrics = httpx.get(f"{base}/metrics", headers=auth).text
    assert f"stratowatch_observations {len(lines)}" in metrics


@pytest.mark.shared_data
def test_serve_tracks_a_real_adsb_recording(serve: Any) -> None:
    if not ADSB_SAMPLE.is_file():
        pytest.skip(f"real ADS-B sample not found: {ADSB_SAMPLE}")
    lines, (lat, lon, alt_m) = real_feed(seconds=40.0, start_s=float(int(time.time())))
    positions = sum(line.startswith("MSG,3") for line in lines)
    assert positions > 30  # the airborne positions of the first 40 s decode
    base, feeder, auth = serve(lines)
    assert feeder.connected.wait(30), "serve never connected to the feed"
    track = wait_for_tracks(base, {"icao:406B90"}, n_observations=positions, auth=auth)["icao:406B90"]
    assert near_m((track["lat_deg"], track["lon_deg"]), (lat, lon)) < 2_000
    assert abs(track["alt_m"] - alt_m) < 150
    assert track["classification"]["label"] == "aircraft"
    exported = httpx.get(f"{base}/api/v1/exports/tracks.csv", headers=auth).text.splitlines()
    assert len(exported) == 2 and "icao:406B90" in exported[1]
