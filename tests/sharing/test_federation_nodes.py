"""Two real nodes on loopback: CAN (radar A, shared with USA; radar B, national only) and USA
(radar C, shared with CAN), each ``stratowatch serve`` with its own store, federating with the
other through a recording TCP proxy. A balloon drifts east out of A/B coverage into C's.

Asserted: the balloon is one global id across the hand-over on both nodes' fused pictures (and
keeps it on USA's once CAN's track stops); only track reads crossed the wire; radar B's id and
plots never reached USA; what crossed to USA is the picture CAN keeps for USA."""

from __future__ import annotations

import contextlib
import json
import math
import os
import re
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

import numpy as np
import pytest

pytestmark = pytest.mark.slow

T0 = 1_700_000_000.0
LAT = 49.0
LON0 = -110.6
SPEED_MPS = 20.0
DURATION_S = 3600.0
M_PER_DEG_LON = 111_320.0 * math.cos(math.radians(LAT))
#: Coverage by longitude: A and B (CAN) west of -109.9, C (USA) east of -110.1.
CAN_EAST_EDGE, USA_WEST_EDGE = -109.9, -110.1
OTHER_LAT = 46.0
REPLAY_SPEED = 240.0  # data seconds per wall second


def _free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return int(s.getsockname()[1])


class RecordingProxy:
    """A loopback TCP proxy that keeps every byte in each direction."""

    def __init__(self, upstream_port: int) -> None:
        self.upstream_port = upstream_port
        self.to_upstream = bytearray()  # requests
        self.from_upstream = bytearray()  # responses
        self._lock = threading.Lock()
        self._srv = socket.socket()
        self._srv.bind(("127.0.0.1", 0))
        self._srv.listen(16)
        self._srv.settimeout(0.2)
        self.port = int(self._srv.getsockname()[1])
        self._stop = threading.Event()
        self._thread = threading.Thread(target=self._accept, daemon=True)
        self._thread.start()

    def _accept(self) -> None:
        while not self._stop.is_set():
            try:
                client, _ = self._srv.accept()
            except (TimeoutError, OSError):
                continue
            try:
                upstream = socket.create_connection(("127.0.0.1", self.upstream_port), timeout=5)
            except OSError:
                client.close()
                continue
            for src, dst, buf in (
                (client, upstream, self.to_upstream),
                (upstream, client, self.from_upstream),
            ):
                threading.Thread(target=self._pump, args=(src, dst, buf), daemon=True).start()

    def _pump(self, src: socket.socket, dst: socket.socket, buf: bytearray) -> None:
        try:
            while chunk := src.recv(65536):
                with self._lock:
                    buf.extend(chunk)
                dst.sendall(chunk)
        except OSError:
            pass
        finally:
            for s in (src, dst):
                with contextlib.suppress(OSError):
                    s.shutdown(socket.SHUT_RDWR)

    def close(self) -> None:
        self._stop.set()
        self._thread.join(2)
        self._srv.close()


def _plots(
    sensors: list[str], west: float, east: float, rng: np.random.Generator, other: bool = False
) -> str:
    """Geodetic CSV of the balloon seen by ``sensors`` (10 s scans, each its own phase) while
    its longitude is in [west, east]; ``other``: also a second balloon far south, seen all along
    (so both files start at the same data time, and the picture holds more than one object)."""
    rows = ["time_utc,lat,lon,alt_m,sigma_h_m,sigma_v_m,sensor_id,identity"]
    for k, sensor in enumerate(sensors):
        for t in np.arange(1.0 + 3.0 * k, DURATION_S, 10.0):
            (n, e, u), other_noise = rng.normal(0.0, [150.0, 150.0, 250.0], size=(2, 3))
            lon = LON0 + SPEED_MPS * t / M_PER_DEG_LON
            if west <= lon <= east:
                rows.append(
                    f"{T0 + t:.1f},{LAT + n / 111_320.0:.6f},{lon + e / M_PER_DEG_LON:.6f},"
                    f"{19_000.0 + u:.1f},150,250,{sensor},"
                )
            if other:
                lon2 = -100.0 + 5.0 * t / M_PER_DEG_LON
                rows.append(
                    f"{T0 + t:.1f},{OTHER_LAT + other_noise[0] / 111_320.0:.6f},"
                    f"{lon2 + other_noise[1] / M_PER_DEG_LON:.6f},"
                    f"{21_000.0 + other_noise[2]:.1f},150,250,{sensor},"
                )
    return "\n".join(rows) + "\n"


def _config(
    tmp: Path, me: str, partner: str, port: int, sensors: list[tuple[str, list[str]]], peer_port: int
) -> Path:
    sensor_tables = "".join(
        f'[[sensors.sensor]]\nid = "{sid}"\nowner = "{me}"\nkind = "radar"\n'
        f"releasable_to = {json.dumps(rel)}\n"
        for sid, rel in sensors
    )
    text = f"""
store_url = "sqlite:///{tmp / f"{me.lower()}.db"}"
[node]
partner = "{me}"
[api]
port = {port}
[[partners]]
id = "{partner}"
{sensor_tables}
[[sources]]
name = "{me.lower()}-radars"
kind = "file"
format = "geodetic-csv"
path = "{me.lower()}.csv"
speed = {REPLAY_SPEED}
[predictions]
enabled = false
[pipeline]
step_s = 0.25
classify_with_winds = false
[federation]
period_s = 0.25
stale_s = 300
max_backoff_s = 1
[[federation.peers]]
partner = "{partner}"
url = "http://127.0.0.1:{peer_port}"
period_s = 0.25
# api_key
"""
    path = tmp / f"{me.lower()}.toml"
    path.write_text(text, encoding="utf-8")
    return path


def _has_auth() -> bool:
    res = subprocess.run(
        [sys.executable, "-m", "stratowatch", "auth", "--help"], capture_output=True, text=True, timeout=60
    )
    return res.returncode == 0


def _add_key(config: Path, principal: str, partner: str, kind: str, scopes: str = "tracks:read") -> str:
    res = subprocess.run(
        [
            *(sys.executable, "-m", "stratowatch", "auth", "add", "--id", principal, "--partner", partner),
            *("--kind", kind, "--scopes", scopes, "--config", str(config)),
        ],
        capture_output=True,
        text=True,
        timeout=60,
    )
    assert res.returncode == 0, res.stderr
    found = re.search(r"(sw_\S+)", res.stdout)
    assert found, res.stdout
    return found.group(1)


def _get(url: str, key: str | None) -> Any:
    req = urllib.request.Request(url, headers={"X-API-Key": key} if key else {})
    with urllib.request.urlopen(req, timeout=5) as r:
        return json.loads(r.read())


def _responses(raw: bytes) -> list[Any]:
    """The JSON bodies of the HTTP/1.1 responses in a recorded byte stream."""
    out = []
    pos = 0
    while (start := raw.find(b"HTTP/1.1 ", pos)) >= 0:
        head_end = raw.find(b"\r\n\r\n", start)
        if head_end < 0:
            break
        head = raw[start:head_end].decode("latin-1").lower()
        length = re.search(r"content-length: (\d+)", head)
        if not length:
            break
        body = raw[head_end + 4 : head_end + 4 + int(length.group(1))]
        pos = head_end + 4 + len(body)
        try:
            out.append(json.loads(body))
        except ValueError:
            out.append(None)
    return out


def _summary(rows: list[tuple[float, str, tuple[str, ...]]]) -> list[str]:
    """Runs of (global id, contributing nodes) with their epochs, for failure messages."""
    out: list[str] = []
    last = None
    for epoch, gid, nodes in rows:
        if (gid, nodes) != last:
            out.append(f"{epoch - T0:.0f}s {gid} {'+'.join(nodes)}")
            last = (gid, nodes)
    return out


@pytest.fixture
def nodes(tmp_path: Path) -> Iterator[dict[str, Any]]:
    rng = np.random.default_rng(7)
    (tmp_path / "can.csv").write_text(
        _plots(["radar-A", "radar-B"], -180.0, CAN_EAST_EDGE, rng), encoding="utf-8"
    )
    (tmp_path / "usa.csv").write_text(
        _plots(["radar-C"], USA_WEST_EDGE, 180.0, rng, other=True), encoding="utf-8"
    )
    ports = {"CAN": _free_port(), "USA": _free_port()}
    # each node reaches the other through a proxy that records what crossed
    proxies = {"CAN": RecordingProxy(ports["CAN"]), "USA": RecordingProxy(ports["USA"])}
    configs = {
        "CAN": _config(
            tmp_path,
            "CAN",
            "USA",
            ports["CAN"],
            [("radar-A", ["CAN", "USA"]), ("radar-B", ["CAN"])],
            proxies["USA"].port,
        ),
        "USA": _config(
            tmp_path, "USA", "CAN", ports["USA"], [("radar-C", ["USA", "CAN"])], proxies["CAN"].port
        ),
    }
    keys: dict[str, str | None] = {"CAN": None, "USA": None}
    if _has_auth():
        # each node issues the other a service key; the test reads each node as one of its own
        for me, other in (("CAN", "USA"), ("USA", "CAN")):
            peer_key = _add_key(configs[me], f"{other.lower()}-node", other, "service")
            keys[me] = _add_key(configs[me], "tester", me, "key", "tracks:read,observations:read")
            text = configs[other].read_text(encoding="utf-8")
            configs[other].write_text(
                text.replace("# api_key\n", f'api_key = "{peer_key}"\n'),
                encoding="utf-8",
            )
    procs = {
        me: subprocess.Popen(
            [sys.executable, "-m", "stratowatch", "serve", "--config", str(configs[me])],
            cwd=tmp_path,
            stdout=subprocess.PIPE,
            stderr=subprocess.STDOUT,
            text=True,
            env={**os.environ, "PYTHONUNBUFFERED": "1"},
        )
        for me in ("CAN", "USA")
    }
    try:
        yield {
            "base": {me: f"http://127.0.0.1:{ports[me]}" for me in ports},
            "keys": keys,
            "procs": procs,
            "proxies": proxies,
        }
    finally:
        outs = {}
        for proc in procs.values():
            if proc.poll() is None:
                proc.send_signal(signal.SIGTERM)
        for me, proc in procs.items():
            try:
                outs[me], _ = proc.communicate(timeout=20)
            except subprocess.TimeoutExpired:
                proc.kill()
                outs[me], _ = proc.communicate()
        for proxy in proxies.values():
            proxy.close()
        for me, out in outs.items():
            assert "Traceback" not in (out or ""), f"{me}: {out}"


def test_a_balloon_handed_over_between_two_nodes_keeps_one_global_id(nodes: dict[str, Any]) -> None:
    base, keys, procs = nodes["base"], nodes["keys"], nodes["procs"]
    seen: dict[str, list[tuple[float, str, tuple[str, ...]]]] = {"CAN": [], "USA": []}
    deadline = time.monotonic() + 45.0
    handed_over = False
    while time.monotonic() < deadline:
        for me in ("CAN", "USA"):
            if procs[me].poll() is not None:
                raise AssertionError(f"{me} exited: {procs[me].stdout.read() if procs[me].stdout else ''}")
            try:
                body = _get(f"{base[me]}/api/v1/federation/tracks", keys[me])
            except OSError:
                continue  # not serving yet
            for t in body["items"]:
                if abs(t["lat_deg"] - LAT) > 0.5:
                    continue  # the other balloon
                seen[me].append((float(body["epoch_s"]), t["global_id"], tuple(t["nodes"])))
        usa_rows = seen["USA"]
        fused_before = any(n == ("USA", "CAN") for _, _, n in usa_rows)
        # done once USA holds the balloon alone after having fused it with CAN's track
        if fused_before and usa_rows and usa_rows[-1][2] == ("USA",):
            handed_over = True
            break
        time.sleep(0.25)
    summary = {me: _summary(rows) for me, rows in seen.items()}
    assert seen["CAN"] and seen["USA"], f"no fused picture: {summary}"
    assert any(n == ("CAN", "USA") for _, _, n in seen["CAN"]), f"CAN never fused USA's track: {summary}"
    assert handed_over, f"USA never held the balloon alone after the hand-over: {summary}"

    # one global id on both nodes from the first time the two pictures met there (each node
    # pulls the other on its own schedule: under load one may fuse a few pulls after the other)
    first_fused = {me: min(e for e, _, n in rows if len(n) == 2) for me, rows in seen.items()}
    ids = {me: {g for e, g, _ in rows if e >= first_fused[me]} for me, rows in seen.items()}
    assert len(ids["USA"]) == 1, ids
    assert ids["CAN"] == ids["USA"], ids
    (gid,) = ids["USA"]
    assert gid.startswith("CAN:")  # CAN's radars saw it first
    # USA never knew the balloon by any other name
    assert {g for _, g, _ in seen["USA"]} == {gid}

    # the link status says up, with the peer's URL
    peers = _get(f"{base['USA']}/api/v1/federation/peers", keys["USA"])["items"]
    assert peers[0]["partner"] == "CAN" and peers[0]["state"] == "up" and peers[0]["tracks"] >= 0

    # what crossed the wire to USA: track reads only, no national-only radar, CAN's USA picture
    proxy = nodes["proxies"]["CAN"]
    requests = bytes(proxy.to_upstream)
    lines = re.findall(rb"(GET|POST|PUT|DELETE|PATCH) (\S+) HTTP/1.1", requests)
    assert lines and all(m == b"GET" and p.startswith(b"/api/v1/tracks?") for m, p in lines), set(lines)
    crossed = bytes(proxy.from_upstream)
    assert b"radar-B" not in crossed
    bodies = [b for b in _responses(crossed) if b is not None]
    items = [t for b in bodies for t in b["items"]]
    assert items, "no tracks crossed to USA"
    assert all("radar-B" not in t["sensors"] for t in items)
    assert all(t.get("audience") == "USA" for t in items), {t.get("audience") for t in items}
    assert all("USA" in t.get("releasable_to", ["PUBLIC"]) or "PUBLIC" in t["releasable_to"] for t in items)
    # and USA's own store never held a CAN plot
    obs = _get(f"{base['USA']}/api/v1/observations?sensor_id=radar-B", keys["USA"])
    assert obs["total"] == 0
