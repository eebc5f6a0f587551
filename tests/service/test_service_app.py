"""The hand-over between live sources and the pipeline: bounded, ordered, nothing lost."""

from __future__ import annotations

import threading
import time
from pathlib import Path

from stratowatch.ingest.base import QuarantineRecord, ReadContext
from stratowatch.ingest.sbs import SbsReader
from stratowatch.model import MeasurementKind, Observation, SourceRef
from stratowatch.service.app import FeedBuffer, FileFeed


def _obs(i: int) -> Observation:
    return Observation(float(i), "s", MeasurementKind.GEODETIC, (50.0, -110.0, 1000.0), (10.0, 10.0))


def test_a_full_buffer_holds_the_source_back_and_loses_nothing() -> None:
    buf = FeedBuffer(max_observations=100)
    done = threading.Event()

    def source() -> None:
        for i in range(1000):
            buf.observation(_obs(i))
        done.set()

    thread = threading.Thread(target=source)
    thread.start()
    time.sleep(0.2)
    assert len(buf) == 100 and not done.is_set()  # the source waits instead of memory growing
    got: list[float] = []
    while not (done.is_set() and len(buf) == 0):
        obs, _ = buf.take(30)
        got.extend(o.time_s for o in obs)
        time.sleep(0.001)
    thread.join(5)
    assert got == [float(i) for i in range(1000)]
    buf.quarantine(QuarantineRecord(SourceRef("feed", 3), "not a number", b"x", "lat"))
    assert len(buf.take(10)[1]) == 1 and buf.take(10)[1] == []


def test_file_feed_replays_a_recording_in_time_order(tmp_path: Path) -> None:
    lines = []
    for k in (2, 0, 1):  # out of order in the file
        ts = f"18:00:0{k}.000"
        lines.append(f"MSG,3,1,1,A1B2C3,1,2023/02/01,{ts},2023/02/01,{ts},,35000,,,49.0{k},-112.0,,,0,0,0,0")
    lines.append(
        "MSG,3,1,1,A1B2C3,1,2023/02/01,18:00:03.000,2023/02/01,18:00:03.000,,35000,,,north,-112.0,,,0,0,0,0"
    )
    path = tmp_path / "rec.sbs"
    path.write_text("\n".join(lines) + "\n", encoding="utf-8")
    buf = FeedBuffer()
    feed = FileFeed(path, SbsReader(), ReadContext("rec", sensor_id="adsb"), buf, speed=0.0).start()
    assert feed.done.wait(10)
    obs, quarantined = buf.take(100)
    assert [round(o.value[0], 2) for o in obs] == [49.0, 49.01, 49.02]
    assert [o.time_s for o in obs] == sorted(o.time_s for o in obs)
    assert len(quarantined) == 1 and quarantined[0].field == "lat"
    feed.stop()
