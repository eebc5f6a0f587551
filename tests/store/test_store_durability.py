"""Nothing acknowledged is lost: a writer killed with SIGKILL mid-stream keeps every batch it
reported as committed, and the tracker snapshot it saved resumes the same tracks."""

from __future__ import annotations

import os
import pickle
import signal
import subprocess
import sys
import time

from stratowatch.model import MeasurementKind, Observation
from stratowatch.store import open_store

BATCH = 250

# The writer: batches of observations of one balloon drifting north; after each commit it prints
# the committed total, then saves the tracker (stepped on that batch's last scan) and prints that.
_WRITER = """
import pickle, sys
from stratowatch.model import MeasurementKind, Observation
from stratowatch.store import open_store
from stratowatch.tracking import Tracker

def scan(k):
    return [Observation(10.0 * k, "sonde", MeasurementKind.GEODETIC, (45.0 + 1e-3 * k, -110.0, 20000.0),
                        (50.0, 50.0), identity="aprs:N0CALL-11")]

store = open_store(sys.argv[1])
tracker = Tracker()
batch, total = int(sys.argv[2]), 0
for b in range(100000):
    obs = [Observation(float(total + i), "feed", MeasurementKind.GEODETIC, (45.0, -110.0, 1000.0),
                       (10.0, 10.0)) for i in range(batch)]
    total += store.write_observations(obs)
    print("obs", total, flush=True)
    tracker.step(10.0 * b, scan(b))
    store.save_state("tracker", pickle.dumps({"batches": b + 1, "tracker": tracker}))
    print("state", b + 1, flush=True)
"""


def test_sigkill_mid_stream_loses_nothing_acknowledged(url: str) -> None:
    env = {**os.environ, "PYTHONUNBUFFERED": "1"}
    proc = subprocess.Popen(
        [sys.executable, "-c", _WRITER, url, str(BATCH)],
        stdout=subprocess.PIPE,
        stderr=subprocess.PIPE,
        env=env,
    )
    acknowledged = {"obs": 0, "state": 0}
    deadline = time.monotonic() + 60.0
    try:
        assert proc.stdout is not None
        while acknowledged["state"] < 12 and time.monotonic() < deadline:
            line = proc.stdout.readline().decode()
            if not line:
                break
            what, count = line.split()
            acknowledged[what] = int(count)
    finally:
        proc.send_signal(signal.SIGKILL)  # mid-stream: the writer is busy with its next batch
        _, err = proc.communicate(timeout=30)
    assert proc.returncode == -signal.SIGKILL, err.decode()[-2000:]
    assert acknowledged["state"] >= 12, err.decode()[-2000:]

    with open_store(url) as store:
        n = store.count("observations")
        assert n >= acknowledged["obs"]
        assert n % BATCH == 0  # a batch is one transaction: all of it or none
        times = [o.time_s for o in store.observations(limit=None)]
        assert times == [float(i) for i in range(n)]  # the committed prefix, nothing missing in it
        snapshot = pickle.loads(store.load_state("tracker") or b"")

    # The tracker resumes from the stored state: the same track continues, with no new one.
    assert snapshot["batches"] >= acknowledged["state"]
    k = snapshot["batches"]
    tracker = snapshot["tracker"]
    nxt = [
        Observation(
            10.0 * k,
            "sonde",
            MeasurementKind.GEODETIC,
            (45.0 + 1e-3 * k, -110.0, 20000.0),
            (50.0, 50.0),
            identity="aprs:N0CALL-11",
        )
    ]
    tracks = tracker.step(10.0 * k, nxt)
    assert len(tracks) == 1 and tracks[0].n_updates == k + 1
    assert abs(tracks[0].lat_deg - (45.0 + 1e-3 * k)) < 1e-3
