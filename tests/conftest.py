"""Suite-wide setup and the fixtures several packages' tests share."""

from __future__ import annotations

import shutil
import socket
import subprocess
import time
from collections.abc import Iterator
from pathlib import Path

import pytest

from stratowatch._native import before_eccodes

# Tests import eccodes directly (GRIB fixtures); native libraries that clash with its bundled
# copies must be loaded first, as the package itself does (see stratowatch._native).
before_eccodes()


def _mosquitto() -> str | None:
    return shutil.which("mosquitto") or next(
        (p for p in ("/usr/sbin/mosquitto", "/usr/bin/mosquitto") if Path(p).exists()), None
    )


@pytest.fixture
def mosquitto(tmp_path: Path) -> Iterator[int]:
    exe = _mosquitto()
    if exe is None:
        pytest.skip("mosquitto is not installed (.ci/run installs it from Debian)")
    s = socket.socket()
    s.bind(("127.0.0.1", 0))
    port = s.getsockname()[1]
    s.close()
    conf = tmp_path / "mosquitto.conf"
    conf.write_text(f"listener {port} 127.0.0.1\nallow_anonymous true\npersistence false\n")
    proc = subprocess.Popen([exe, "-c", str(conf)], stdout=subprocess.DEVNULL, stderr=subprocess.PIPE)
    try:
        ok = _wait(lambda: _port_open(port), 5)
        if not ok:
            pytest.skip(f"mosquitto did not start: {proc.stderr.read(500) if proc.stderr else ''!r}")
        yield port
    finally:
        proc.terminate()
        proc.wait(5)


def _port_open(port: int) -> bool:
    try:
        socket.create_connection(("127.0.0.1", port), timeout=0.2).close()
        return True
    except OSError:
        return False


def _wait(cond, timeout_s: float) -> bool:  # type: ignore[no-untyped-def]
    end = time.monotonic() + timeout_s
    while time.monotonic() < end:
        if cond():
            return True
        time.sleep(0.05)
    return bool(cond())
