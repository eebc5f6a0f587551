"""ASTERIX as a live stream: blocks are decoded as they arrive, even split across reads."""

import socket
import threading
import time
from datetime import date

import numpy as np

from stratowatch.ingest._cat048 import encode_cat048
from stratowatch.ingest.asterix import AsterixReader
from stratowatch.ingest.base import CollectingSink, ReadContext
from stratowatch.ingest.registry import registry_from_dict
from stratowatch.ingest.sources import TcpSource

REGISTRY = {
    "sensor": [
        {
            "id": "radar-a",
            "aliases": ["asterix:25/201"],
            "kind": "radar",
            "lat_deg": 45.0,
            "lon_deg": 15.0,
            "alt_m": 300.0,
        }
    ]
}


def _blocks(n_blocks: int) -> bytes:
    n = 5 * n_blocks
    return encode_cat048(
        sac=25,
        sic=201,
        tod_s=43200.0 + np.arange(n),
        typ=2,
        rho_nm=np.linspace(20, 120, n),
        theta_deg=np.linspace(0, 350, n),
        mode3a=1234,
        flight_level=350.0,
        records_per_block=5,
    )


def test_split_blocks_over_tcp_are_emitted_before_the_feed_closes():
    data = _blocks(4)
    first, second = data[: len(data) // 2 + 3], data[len(data) // 2 + 3 :]  # cut inside a block
    server = socket.socket()
    server.bind(("127.0.0.1", 0))
    server.listen(1)
    port = server.getsockname()[1]
    release = threading.Event()

    def serve() -> None:
        conn, _ = server.accept()
        conn.sendall(first)
        release.wait(10)
        conn.sendall(second)
        time.sleep(0.2)
        conn.close()

    threading.Thread(target=serve, daemon=True).start()
    sink = CollectingSink()
    reader = AsterixReader(registry_from_dict(REGISTRY))
    ctx = ReadContext("tcp:radar", date_utc=date(2024, 1, 2))
    with TcpSource("127.0.0.1", port, reader, ctx, sink, reconnect_after_quiet_s=None):
        deadline = time.time() + 10
        while len(sink.observations) < 5 and time.time() < deadline:
            time.sleep(0.05)
        live = len(sink.observations)
        release.set()
        deadline = time.time() + 10
        while len(sink.observations) < 20 and time.time() < deadline:
            time.sleep(0.05)
    server.close()
    assert 5 <= live < 20  # the complete blocks of the first send, before the rest arrived
    assert len(sink.observations) == 20 and not sink.quarantined
    assert sorted(o.source.position for o in sink.observations) == sorted(
        {o.source.position for o in sink.observations}
    )


def test_without_the_optional_decoder_library_blocks_are_quarantined_with_the_reason(monkeypatch):
    import importlib.util
    import io

    import stratowatch.ingest.asterix as ax

    real = importlib.util.find_spec
    monkeypatch.setattr(
        ax.importlib.util, "find_spec", lambda name, *a: None if name == "asterix" else real(name, *a)
    )
    cat034 = bytes([34, 0, 10, 0xF0, 25, 201, 1, 0x54, 0x60, 0x00])  # a north marker (SAC/SIC, type, time)
    data = _blocks(1) + cat034
    sink = CollectingSink()
    AsterixReader(registry_from_dict(REGISTRY)).read(
        io.BytesIO(data), ReadContext("f.ast", date_utc=date(2024, 1, 2)), sink
    )
    assert len(sink.observations) == 5  # CAT048 needs no library
    assert len(sink.quarantined) == 1
    assert "asterix-decoder is not installed" in sink.quarantined[0].reason
