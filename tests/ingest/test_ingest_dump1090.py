"""Against a real receiver program: dump1090-mutability in --net-only mode.

The real Beast recording and raw frames from ../shared/data/adsb are pushed into dump1090's
Beast and raw input ports; stratowatch's live TCP sources read its SBS (30003-style), Beast
(30005-style) and AVR (30002-style) outputs, and an HTTP poll reads the aircraft.json it writes.
What comes out must match reading the same files directly.
"""

from __future__ import annotations

import csv
import functools
import http.server
import io
import os
import shutil
import socket
import subprocess
import threading
import time
from collections.abc import Callable, Iterator
from dataclasses import dataclass
from pathlib import Path

import pytest

from stratowatch.ingest.base import CollectingSink, ReadContext
from stratowatch.ingest.beast import BeastReader
from stratowatch.ingest.modes import ModeSReader
from stratowatch.ingest.readsb import ReadsbReader
from stratowatch.ingest.sbs import SbsReader
from stratowatch.ingest.sources import HttpPollSource, LiveSource, TcpSource
from stratowatch.model import Observation

REPO_ROOT = next(p for p in Path(__file__).resolve().parents if (p / "pyproject.toml").exists())
ADSB = REPO_ROOT.parent / "shared" / "data" / "adsb"
EXE = shutil.which("dump1090-mutability") or (
    "/usr/bin/dump1090-mutability" if Path("/usr/bin/dump1090-mutability").exists() else None
)
pytestmark = [
    pytest.mark.skipif(EXE is None, reason="dump1090-mutability not installed (.ci/run installs it)"),
    pytest.mark.skipif(not ADSB.is_dir(), reason=f"real ADS-B samples absent ({ADSB})"),
]
N_RAW = 400  # frames of the pyModeS sample pushed as raw AVR lines


def free_ports(n: int) -> list[int]:
    socks = [socket.socket() for _ in range(n)]
    for s in socks:
        s.bind(("127.0.0.1", 0))
    ports = [s.getsockname()[1] for s in socks]
    for s in socks:
        s.close()
    return ports


def wait_for(cond: Callable[[], bool], timeout_s: float = 10.0) -> bool:
    end = time.monotonic() + timeout_s
    while time.monotonic() < end:
        if cond():
            return True
        time.sleep(0.05)
    return cond()


def settled(sources: list[LiveSource], quiet_s: float = 1.0, timeout_s: float = 15.0) -> None:
    """Wait until no source has received a byte for ``quiet_s``."""
    end = time.monotonic() + timeout_s
    last = -1
    stable_since = time.monotonic()
    while time.monotonic() < end:
        total = sum(s.bytes_received for s in sources)
        if total != last:
            last, stable_since = total, time.monotonic()
        elif total > 0 and time.monotonic() - stable_since >= quiet_s:
            return
        time.sleep(0.05)


@dataclass
class Feed:
    sbs: CollectingSink
    beast: CollectingSink
    avr: CollectingSink
    http: CollectingSink
    direct: list[Observation]
    sent_at: float


def raw_lines() -> list[str]:
    with (ADSB / "pymodes_sample_data_adsb.csv").open() as f:
        return [row[1] for row in csv.reader(f)][:N_RAW]


@pytest.fixture(scope="module")
def feed(tmp_path_factory: pytest.TempPathFactory) -> Iterator[Feed]:
    assert EXE is not None
    ri, ro, sbs, bi, bo, http_port = free_ports(6)
    json_dir = tmp_path_factory.mktemp("dump1090json")
    proc = subprocess.Popen(
        [EXE, "--net-only", "--quiet", "--net-bind-address", "127.0.0.1",
         "--net-ri-port", str(ri), "--net-ro-port", str(ro), "--net-sbs-port", str(sbs),
         "--net-bi-port", str(bi), "--net-bo-port", str(bo), "--net-heartbeat", "0",
         "--write-json", str(json_dir), "--write-json-every", "1"],
        env=dict(os.environ, TZ="UTC"), stdout=subprocess.DEVNULL, stderr=subprocess.PIPE,
    )  # fmt: skip
    handler = functools.partial(http.server.SimpleHTTPRequestHandler, directory=str(json_dir))
    handler.log_message = lambda *a: None  # type: ignore[attr-defined]
    httpd = http.server.ThreadingHTTPServer(("127.0.0.1", http_port), handler)
    threading.Thread(target=httpd.serve_forever, daemon=True).start()
    sinks = [CollectingSink() for _ in range(4)]
    outputs = [(sbs, SbsReader(), "sbs"), (bo, BeastReader(), "beast"), (ro, ModeSReader(), "avr")]
    sources: list[LiveSource] = [
        TcpSource("127.0.0.1", port, reader, ReadContext(f"dump1090:{name}"), sink, backoff_initial_s=0.1)
        for (port, reader, name), sink in zip(outputs, sinks, strict=False)
    ]
    try:
        for s in sources:
            s.start()
        if not wait_for(lambda: all(s.connects >= 1 for s in sources), 10):
            err = proc.stderr.read(1000) if proc.poll() is not None and proc.stderr else b""
            pytest.fail(f"could not connect to dump1090's outputs {err!r}")
        time.sleep(0.3)
        sent_at = time.time()
        with socket.create_connection(("127.0.0.1", bi)) as s:
            s.sendall((ADSB / "traffic_sample_dump1090_beast.bin").read_bytes())
        settled(sources)
        with socket.create_connection(("127.0.0.1", ri)) as s:
            s.sendall("".join(f"*{h};\n" for h in raw_lines()).encode())
        settled(sources)
        poll = HttpPollSource(f"http://127.0.0.1:{http_port}/aircraft.json", ReadsbReader(),
                              ReadContext("dump1090:json"), sinks[3], period_s=0.5)  # fmt: skip
        with poll:
            wait_for(lambda: any(o.identity == "icao:406B90" for o in sinks[3].observations), 5)
        # the same inputs read directly from the files
        direct = CollectingSink()
        BeastReader().read(io.BytesIO((ADSB / "traffic_sample_dump1090_beast.bin").read_bytes()),
                           ReadContext("file"), direct)  # fmt: skip
        ModeSReader(clock=lambda: 0.0).read(
            io.BytesIO("\n".join(raw_lines()).encode()), ReadContext("file"), direct
        )
        yield Feed(*sinks, direct=direct.observations, sent_at=sent_at)
    finally:
        for s in sources:
            s.stop()
        httpd.shutdown()
        proc.terminate()
        proc.wait(5)


def key(o: Observation) -> tuple[object, ...]:
    return (o.identity, round(o.value[0], 9), round(o.value[1], 9), o.value[2])


def test_beast_output_gives_the_same_observations_as_the_files(feed: Feed) -> None:
    assert len(feed.direct) > 150
    assert sorted(map(key, feed.beast.observations)) == sorted(map(key, feed.direct))
    assert not feed.beast.quarantined
    assert {o.identity for o in feed.beast.observations} == {"icao:406B90", "icao:48520A"}
    assert {o.callsign for o in feed.beast.observations if o.identity == "icao:48520A"} <= {None, "TRA89M"}


def test_avr_output_gives_the_same_observations_as_the_files(feed: Feed) -> None:
    assert sorted(map(key, feed.avr.observations)) == sorted(map(key, feed.direct))


def test_sbs_output_agrees_with_our_own_decoding(feed: Feed) -> None:
    sbs = feed.sbs.observations
    assert len(sbs) > 100
    assert not feed.sbs.quarantined
    direct = {}
    for o in feed.direct:
        direct.setdefault(o.identity, []).append(o)
    for o in sbs:
        # dump1090 prints 5 decimals and decodes with its own CPR code: every position it
        # reports is one we decoded too
        assert o.identity in direct
        assert any(
            abs(d.value[0] - o.value[0]) < 2e-5 and abs(d.value[1] - o.value[1]) < 2e-5
            and d.value[2] == pytest.approx(o.value[2])
            for d in direct[o.identity]
        ), o  # fmt: skip
        # SBS times are dump1090's wall clock (UTC): within the test's run
        assert feed.sent_at - 5 < o.time_s < time.time() + 5
    assert {o.callsign for o in sbs if o.identity == "icao:406B90"} >= {"EZY85MH"}
    assert any(o.velocity_enu_mps is not None for o in sbs)


def test_aircraft_json_over_http(feed: Feed) -> None:
    obs = [o for o in feed.http.observations if o.identity == "icao:406B90"]
    assert obs
    last = obs[-1]
    assert last.callsign == "EZY85MH"
    ours = [d for d in feed.direct if d.identity == "icao:406B90"][-1]
    assert last.value[:2] == pytest.approx(ours.value[:2], abs=2e-5)
