"""ASTERIX radar and surveillance data (EUROCONTROL) from raw block files and pcap/pcapng captures.

Input units are ASTERIX *records* (a data block holds one or more records of one category). A
run of bytes that cannot be framed as data blocks is one unit, quarantined whole.

Categories and what they become:

* **CAT048** (monoradar target reports) — decoded in bulk by :mod:`._cat048` (numba framing,
  numpy fields); sensor ``asterix:<SAC>/<SIC>`` unless the registry aliases it.

  - A plot with a validated, ungarbled Mode C height (I090, V=0, G=0) becomes **POLAR_HEIGHT**
    ``(range_m, azimuth_deg, alt_m)`` with ``alt_m`` the flight level times 30.48 m. A flight
    level is pressure altitude, not geometric height, so the default height sigma is 150 m.
  - A plot without a usable height (primary-only, no Mode C, or Mode C not validated) becomes
    **GROUND_2D**: the ground point under the target, found on a sphere of radius 6371 km from
    the slant range and azimuth, assuming a nominal target altitude of
    :data:`NOMINAL_ALT_M` (10 km). The true altitude is taken as anywhere in
    0..:data:`ALT_SPAN_M` (20 km), so the ground-range ambiguity ``|d(0) - d(20 km)| / sqrt(12)``
    (a uniform spread) is added in quadrature to the range sigma; the horizontal sigma is the
    larger of that radial sigma and the cross-range sigma ``d * sigma_azimuth``. This needs the
    radar site: plots of a sensor not in the registry (or registered without a site) are
    quarantined with a reason that says so.
  - Identity ``icao:<I220>`` when the Mode S address is present; callsign from I240.
  - Simulated (I020 SIM), test (TST) and fixed-transponder (RAB) reports, and records without
    I040, are counted as messages, not observations.

* **CAT062** (SDPS system tracks from a partner) — **GEODETIC** from I105 (WGS-84) with the
  altitude from I130 (calculated geometric), else I136 (measured FL), else I135 (barometric);
  with none, GROUND_2D. Velocity from I185 (Vx, Vy taken as east, north) and I220 (rate of climb,
  0 when absent). Identity: ``icao:<I380 ADR>`` when the track carries a Mode S address — so a
  partner's track binds to our own ADS-B of the same aircraft — otherwise
  ``track:<SAC>/<SIC>:<I040 track number>``; callsign from I380 ID (else I390 CSN).
* **CAT021** (ADS-B target reports) — GEODETIC from I131 (high resolution) or I130, altitude from
  I140 (geometric height), else I145 (flight level); GROUND_2D when neither. Time from I073, else
  I071, I075, I077. Identity ``icao:<I080>`` when I040 ATP says a 24-bit ICAO address; velocity
  from I160 and I157/I155. Emitter category (I020 ECAT) as ``category = "ecat:<n>"``.
* **CAT034** (radar service messages) and **CAT065** (SDPS service messages) are counted as
  ``asterix_cat034_north_marker``, ``..._sector_crossing``, ``..._geographical_filtering``,
  ``..._jamming_strobe``, ``asterix_cat065_sdps_status``, ``..._end_of_batch``,
  ``..._service_status``. CAT002/019/023/025/063/247/252 (non-positional status categories) are
  counted as ``asterix_cat<NNN>``. Other categories are quarantined as not supported.

Times: ASTERIX gives only a time of day. It is anchored to ``ReadContext.date_utc`` when given,
rolling the day over at midnight (a backwards jump of more than 12 h is the next day; a forward
jump of more than 12 h is a late record of the previous day). Without a date, pcap packets
anchor each record to the day of their capture timestamp (nearest instant); raw files use the
current UTC date with a logged warning.

CAT021/034/062/065 are decoded by asterix-decoder. That library can crash the interpreter on
corrupt data (e.g. a non-ASCII byte in a CAT062 I390 airport code segfaults it), so it runs in a
worker process: a block that kills the worker, or takes longer than 5 s, is quarantined and a
fresh worker takes the next block.
"""

from __future__ import annotations

import contextlib
import importlib.util
import logging
import math
import os
import pickle
import select
import struct
import subprocess
import sys
from collections.abc import Iterator
from dataclasses import dataclass
from datetime import UTC, date, datetime
from typing import IO, Any

import numpy as np
import numpy.typing as npt

from stratowatch.geo import EARTH_RADIUS_M, destination
from stratowatch.ingest._cat048 import ERROR_TEXT, Cat048Records, decode_cat048
from stratowatch.ingest._emit import Emitter
from stratowatch.ingest.base import IngestStats, ReadContext, Sink, register
from stratowatch.ingest.registry import EMPTY_REGISTRY, SensorRegistry
from stratowatch.model import MeasurementKind, Observation, Sensor, SourceRef

log = logging.getLogger(__name__)

FT_M = 0.3048
NM_M = 1852.0
FPM_MPS = FT_M / 60.0
#: Nominal target altitude assumed for CAT048 plots without a height (m).
NOMINAL_ALT_M = 10_000.0
#: Altitude band (0..ALT_SPAN_M) over which a height-less plot may lie (m).
ALT_SPAN_M = 20_000.0
#: Default accuracies when the sensor is not registered.
DEFAULT_RADAR = Sensor("asterix", kind="radar", sigma_range_m=70.0, sigma_azimuth_deg=0.08, sigma_v_m=150.0)
DEFAULT_TRACK_SIGMA_H_M = 150.0
DEFAULT_TRACK_SIGMA_V_M = 100.0
DEFAULT_TRACK_SIGMA_VEL_MPS = 5.0
DEFAULT_ADSB_SIGMA_H_M = 30.0
DEFAULT_ADSB_SIGMA_V_M = 50.0

KNOWN_CATEGORIES = frozenset(
    {1, 2, 4, 8, 10, 11, 15, 19, 20, 21, 23, 25, 30, 31, 32, 34, 48, 62, 63, 65, 205, 240, 247, 252}
)
_COUNTED_CATEGORIES = frozenset({2, 4, 8, 19, 23, 25, 63, 247, 252})
_LIBRARY_CATEGORIES = frozenset({21, 34, 62, 65}) | _COUNTED_CATEGORIES
_CAT034_TYPES = {
    1: "north_marker",
    2: "sector_crossing",
    3: "geographical_filtering",
    4: "jamming_strobe",
}
_CAT065_TYPES = {1: "sdps_status", 2: "end_of_batch", 3: "service_status"}

_SECONDS_PER_DAY = 86400.0
# What a CAT048 record becomes (see _Session._emit_cat048).
_A_ERROR, _A_SIM, _A_TST, _A_RAB, _A_NOPOS, _A_NOSRC, _A_NOTIME = 0, 1, 2, 3, 4, 5, 6
_A_POLAR, _A_GROUND, _A_NOSITE = 7, 8, 9
_A_MESSAGES = {
    _A_SIM: "asterix_cat048_simulated",
    _A_TST: "asterix_cat048_test_target",
    _A_RAB: "asterix_cat048_field_monitor",
    _A_NOPOS: "asterix_cat048_no_position",
}
_A_QUARANTINE = {
    _A_ERROR: ("", "FSPEC"),
    _A_NOSRC: ("CAT048 record without I010 SAC/SIC", "I010"),
    _A_NOTIME: ("CAT048 record without I140 time of day", "I140"),
    _A_NOSITE: ("CAT048 plot without a height needs the radar site (register lat_deg/lon_deg)", "I090"),
}
_HALF_DAY = 43200.0


# ---------------------------------------------------------------------------------------------
# Capture files: pcap and pcapng -> UDP payloads.

_PCAP_MAGIC = {
    b"\xd4\xc3\xb2\xa1": ("<", 1e-6),
    b"\xa1\xb2\xc3\xd4": (">", 1e-6),
    b"\x4d\x3c\xb2\xa1": ("<", 1e-9),
    b"\xa1\xb2\x3c\x4d": (">", 1e-9),
}
_PCAPNG_MAGIC = b"\x0a\x0d\x0d\x0a"


@dataclass(frozen=True, slots=True)
class Packet:
    """One captured packet: its index (1-based), capture time and UDP payload (or why not)."""

    index: int
    time_s: float
    payload: bytes | None
    problem: str = ""
    raw: bytes = b""


def is_capture(head: bytes) -> bool:
    return head[:4] in _PCAP_MAGIC or head[:4] == _PCAPNG_MAGIC


def iter_packets(data: bytes) -> Iterator[Packet]:
    """UDP payloads of a pcap or pcapng capture; packets that are not UDP carry a ``problem``.

    Truncated captures end with one packet whose problem says so (its raw bytes are the rest).
    """
    if data[:4] == _PCAPNG_MAGIC:
        yield from _iter_pcapng(data)
        return
    endian, unit = _PCAP_MAGIC[data[:4]]
    if len(data) < 24:
        yield Packet(0, math.nan, None, "truncated pcap header", data)
        return
    linktype = struct.unpack_from(endian + "I", data, 20)[0] & 0x0FFFFFFF
    p, index = 24, 0
    while p < len(data):
        index += 1
        if p + 16 > len(data):
            yield Packet(index, math.nan, None, "truncated pcap record header", data[p:])
            return
        sec, frac, incl, _orig = struct.unpack_from(endian + "IIII", data, p)
        body = data[p + 16 : p + 16 + incl]
        if len(body) < incl:
            yield Packet(index, math.nan, None, "truncated pcap packet", data[p:])
            return
        yield _udp_packet(index, sec + frac * unit, linktype, body)
        p += 16 + incl


def _iter_pcapng(data: bytes) -> Iterator[Packet]:
    p, index = 0, 0
    endian = "<"
    links: list[tuple[int, float]] = []
    while p < len(data):
        if p + 12 > len(data):
            yield Packet(index + 1, math.nan, None, "truncated pcapng block", data[p:])
            return
        btype = data[p : p + 4]
        if btype == _PCAPNG_MAGIC:
            bom = data[p + 8 : p + 12]
            endian = "<" if bom == b"\x4d\x3c\x2b\x1a" else ">"
            links = []
        blen = struct.unpack_from(endian + "I", data, p + 4)[0]
        if blen < 12 or blen % 4 or p + blen > len(data):
            yield Packet(index + 1, math.nan, None, "bad pcapng block length", data[p:])
            return
        code = struct.unpack_from(endian + "I", data, p)[0]
        body = data[p + 8 : p + blen - 4]
        if code == 1 and len(body) >= 8:  # interface description
            linktype = struct.unpack_from(endian + "H", body, 0)[0]
            links.append((linktype, _pcapng_tsresol(body[8:], endian)))
        elif code == 6 and len(body) >= 20:  # enhanced packet
            index += 1
            iface, hi, lo, cap = struct.unpack_from(endian + "IIII", body, 0)
            linktype, unit = links[iface] if iface < len(links) else (1, 1e-6)
            yield _udp_packet(index, ((hi << 32) | lo) * unit, linktype, body[20 : 20 + cap])
        elif code == 3 and len(body) >= 4:  # simple packet
            index += 1
            linktype = links[0][0] if links else 1
            yield _udp_packet(index, math.nan, linktype, body[4:])
        p += blen


def _pcapng_tsresol(options: bytes, endian: str) -> float:
    q = 0
    while q + 4 <= len(options):
        code, length = struct.unpack_from(endian + "HH", options, q)
        if code == 0:
            break
        if code == 9 and length >= 1:
            v = options[q + 4]
            return 2.0 ** -(v & 0x7F) if v & 0x80 else 10.0**-v
        q += 4 + ((length + 3) & ~3)
    return 1e-6


def _udp_packet(index: int, time_s: float, linktype: int, frame: bytes) -> Packet:
    """Strip link, IP and UDP headers."""
    ethertype: int | None
    if linktype == 1:  # Ethernet
        if len(frame) < 14:
            return Packet(index, time_s, None, "truncated Ethernet header", frame)
        ethertype, off = struct.unpack_from(">H", frame, 12)[0], 14
        while ethertype in (0x8100, 0x88A8) and off + 4 <= len(frame):
            ethertype = struct.unpack_from(">H", frame, off + 2)[0]
            off += 4
    elif linktype in (101, 12, 14):  # raw IP
        ethertype, off = None, 0
    elif linktype == 113:  # Linux cooked
        if len(frame) < 16:
            return Packet(index, time_s, None, "truncated SLL header", frame)
        ethertype, off = struct.unpack_from(">H", frame, 14)[0], 16
    elif linktype == 276:  # Linux cooked v2
        if len(frame) < 20:
            return Packet(index, time_s, None, "truncated SLL2 header", frame)
        ethertype, off = struct.unpack_from(">H", frame, 0)[0], 20
    elif linktype == 0:  # BSD loopback
        ethertype, off = None, 4
    else:
        return Packet(index, time_s, None, f"unsupported link type {linktype}", frame)
    ip = frame[off:]
    if not ip:
        return Packet(index, time_s, None, "empty IP packet", frame)
    version = ip[0] >> 4
    if ethertype not in (None, 0x0800, 0x86DD):
        return Packet(index, time_s, None, "not IP", frame)
    if version == 4:
        ihl = (ip[0] & 0x0F) * 4
        if len(ip) < 20 or ihl < 20 or len(ip) < ihl:
            return Packet(index, time_s, None, "truncated IPv4 header", frame)
        if ip[9] != 17:
            return Packet(index, time_s, None, "not UDP", frame)
        frag = struct.unpack_from(">H", ip, 6)[0]
        if frag & 0x3FFF:
            return Packet(index, time_s, None, "IPv4 fragment", frame)
        total = struct.unpack_from(">H", ip, 2)[0]
        udp = ip[ihl : max(total, ihl)] if total else ip[ihl:]
    elif version == 6:
        if len(ip) < 40:
            return Packet(index, time_s, None, "truncated IPv6 header", frame)
        if ip[6] != 17:
            return Packet(index, time_s, None, "not UDP", frame)
        udp = ip[40:]
    else:
        return Packet(index, time_s, None, "not IP", frame)
    if len(udp) < 8:
        return Packet(index, time_s, None, "truncated UDP header", frame)
    ulen = struct.unpack_from(">H", udp, 4)[0]
    payload = udp[8:ulen] if 8 <= ulen <= len(udp) else udp[8:]
    return Packet(index, time_s, payload)


# ---------------------------------------------------------------------------------------------
# Data block framing.


def frame_blocks(data: bytes, start: int = 0, end: int | None = None) -> list[tuple[int, int, int]]:
    """Split ``data[start:end]`` into data blocks: (category, block start, block end); a run that
    cannot be framed is returned with category -1 (resynchronised at the next plausible block)."""
    stop = len(data) if end is None else end
    out: list[tuple[int, int, int]] = []
    p = start
    while p < stop:
        if _plausible(data, p, stop, strict=False):
            n = (data[p + 1] << 8) | data[p + 2]
            out.append((data[p], p, p + n))
            p += n
            continue
        q = p + 1
        while q < stop and not _plausible(data, q, stop, strict=True):
            q += 1
        out.append((-1, p, q))
        p = q
    return out


def _plausible(data: bytes, p: int, stop: int, *, strict: bool) -> bool:
    if p + 3 > stop:
        return False
    n = (data[p + 1] << 8) | data[p + 2]
    if n < 4 or p + n > stop:
        return False
    if not strict:
        return True
    if data[p] not in KNOWN_CATEGORIES:
        return False
    nxt = p + n
    return nxt == stop or (data[nxt] in KNOWN_CATEGORIES and _plausible(data, nxt, stop, strict=False))


def sniff(head: bytes) -> bool:
    """Raw ASTERIX (whole blocks of known categories chained from the first byte) or a capture."""
    if is_capture(head):
        return True
    p, blocks = 0, 0
    while p + 3 <= len(head):
        n = (head[p + 1] << 8) | head[p + 2]
        if head[p] not in KNOWN_CATEGORIES or n < 4:
            return False
        if p + n > len(head):
            return blocks >= 1 or (len(head) >= 4096 and p == 0 and head[3] != 0)
        p += n
        blocks += 1
    return blocks >= 1 and p == len(head)


# ---------------------------------------------------------------------------------------------
# Time of day -> POSIX seconds.


class TimeAnchor:
    """Turns ASTERIX times of day into UTC POSIX seconds (see the module docstring)."""

    def __init__(self, date_utc: date | None) -> None:
        self.date_utc = date_utc
        self._day0 = (
            datetime(date_utc.year, date_utc.month, date_utc.day, tzinfo=UTC).timestamp()
            if date_utc is not None
            else math.nan
        )
        self._last_tod = math.nan
        self._days = 0
        self._warned = False

    def resolve(
        self, tod_s: npt.NDArray[np.float64], packet_time_s: npt.NDArray[np.float64]
    ) -> npt.NDArray[np.float64]:
        tod = np.asarray(tod_s, dtype=np.float64)
        pkt = np.asarray(packet_time_s, dtype=np.float64)
        out = np.full(tod.shape, np.nan)
        finite = np.isfinite(tod)
        if self.date_utc is None and np.isfinite(pkt[finite]).all():
            t = np.floor(pkt / _SECONDS_PER_DAY) * _SECONDS_PER_DAY + tod
            t += _SECONDS_PER_DAY * ((pkt - t) > _HALF_DAY) - _SECONDS_PER_DAY * ((t - pkt) > _HALF_DAY)
            out[finite] = t[finite]
            return out
        if self.date_utc is None:
            if not self._warned:
                log.warning("ASTERIX times of day anchored to today's UTC date; state the date (--date)")
                self._warned = True
            today = datetime.now(UTC).date()
            self.date_utc = today
            self._day0 = datetime(today.year, today.month, today.day, tzinfo=UTC).timestamp()
        vals = tod[finite]
        if vals.size:
            prev = np.concatenate([[self._last_tod if math.isfinite(self._last_tod) else vals[0]], vals[:-1]])
            d = vals - prev
            days = self._days + np.cumsum(
                (d < -_HALF_DAY).astype(np.int64) - (d > _HALF_DAY).astype(np.int64)
            )
            out[finite] = self._day0 + days * _SECONDS_PER_DAY + vals
            self._last_tod = float(vals[-1])
            self._days = int(days[-1])
        return out


# ---------------------------------------------------------------------------------------------
# asterix-decoder in a worker process.

_WORKER_SOURCE = r"""
import os, pickle, struct, sys
proto_out = os.fdopen(os.dup(1), "wb")
os.dup2(2, 1)
inp = sys.stdin.buffer
import asterix
proto_out.write(b"RDY!"); proto_out.flush()
while True:
    h = inp.read(4)
    if len(h) < 4:
        break
    data = inp.read(struct.unpack(">I", h)[0])
    try:
        res = ("ok", asterix.parse(data, verbose=False))
    except Exception as e:
        res = ("error", type(e).__name__ + ": " + str(e))
    b = pickle.dumps(res, protocol=pickle.HIGHEST_PROTOCOL)
    proto_out.write(struct.pack(">I", len(b)) + b)
    proto_out.flush()
"""


class DecoderWorker:
    """asterix-decoder's ``parse`` in a child process, restarted after a crash or a hang."""

    def __init__(self, timeout_s: float = 5.0, source: str = _WORKER_SOURCE) -> None:
        self.timeout_s = timeout_s
        self.source = source
        self._proc: subprocess.Popen[bytes] | None = None
        self.restarts = 0

    def _start(self) -> subprocess.Popen[bytes]:
        proc = subprocess.Popen(
            [sys.executable, "-c", self.source],
            stdin=subprocess.PIPE,
            stdout=subprocess.PIPE,
            stderr=subprocess.DEVNULL,
            bufsize=0,
        )
        assert proc.stdout is not None
        if self._read(proc, 4, 30.0) != b"RDY!":
            self._kill(proc)
            raise RuntimeError("asterix-decoder could not be started in a worker process")
        return proc

    def parse(self, block: bytes) -> tuple[str, Any]:
        """("ok", records) | ("error", text) | ("crash", text) for one data block."""
        if importlib.util.find_spec("asterix") is None:
            return "error", "asterix-decoder is not installed (pip install 'stratowatch[asterix]')"
        if self._proc is None:
            self._proc = self._start()
        proc = self._proc
        assert proc.stdin is not None
        try:
            proc.stdin.write(struct.pack(">I", len(block)) + block)
            head = self._read(proc, 4, self.timeout_s)
            body = self._read(proc, struct.unpack(">I", head)[0], self.timeout_s) if len(head) == 4 else b""
            if len(head) == 4:
                status, value = pickle.loads(body)
                return str(status), value
        except (OSError, ValueError, EOFError, pickle.UnpicklingError, struct.error):
            pass
        try:
            rc: int | None = proc.wait(timeout=1.0)  # a crashed worker has closed its pipe
        except subprocess.TimeoutExpired:
            rc = None
        self._kill(proc)
        self._proc = None
        self.restarts += 1
        why = "timed out" if rc is None else f"crashed (exit status {rc})"
        return "crash", f"asterix-decoder {why}"

    @staticmethod
    def _read(proc: subprocess.Popen[bytes], n: int, timeout_s: float) -> bytes:
        assert proc.stdout is not None
        fd = proc.stdout.fileno()
        chunks: list[bytes] = []
        got = 0
        while got < n:
            ready, _, _ = select.select([fd], [], [], timeout_s)
            if not ready:
                break
            chunk = os.read(fd, n - got)
            if not chunk:
                break
            chunks.append(chunk)
            got += len(chunk)
        return b"".join(chunks)

    @staticmethod
    def _kill(proc: subprocess.Popen[bytes]) -> None:
        if proc.poll() is None:
            proc.kill()
        proc.wait()
        for f in (proc.stdin, proc.stdout):
            if f is not None:
                f.close()

    def close(self) -> None:
        if self._proc is not None:
            proc, self._proc = self._proc, None
            if proc.stdin is not None:
                proc.stdin.close()
            with contextlib.suppress(subprocess.TimeoutExpired):
                proc.wait(timeout=2.0)
            self._kill(proc)


# ---------------------------------------------------------------------------------------------
# The reader.


def _val(rec: dict[str, Any], item: str, *path: str) -> Any:
    """``rec[item][path...]["val"]`` or None (asterix-decoder's non-verbose record layout)."""
    node: Any = rec.get(item)
    for key in path:
        if not isinstance(node, dict):
            return None
        node = node.get(key)
    if isinstance(node, dict):
        return node.get("val")
    return None


class AsterixReader:
    """Reads raw ASTERIX or pcap/pcapng into observations (see the module docstring)."""

    name = "asterix"

    def __init__(self, registry: SensorRegistry = EMPTY_REGISTRY, decoder_timeout_s: float = 5.0) -> None:
        self.registry = registry
        self.decoder_timeout_s = decoder_timeout_s

    def read(self, stream: IO[bytes], ctx: ReadContext, sink: Sink) -> IngestStats:
        """Read a capture whole, or a raw block stream incrementally: complete data blocks are
        decoded as they arrive (a live TCP feed emits at once), a block split across reads waits
        for its tail, and whatever is left at the end of the stream is framed (and quarantined
        if it cannot be)."""
        out = Emitter(sink, ctx.source)
        anchor = TimeAnchor(ctx.date_utc)
        worker = DecoderWorker(self.decoder_timeout_s)
        try:
            head = _read_some(stream)
            if is_capture(head[:4]):
                data = head + stream.read()
                session = _Session(self.registry, out, anchor, worker, data)
                for pkt in iter_packets(data):
                    if pkt.payload is None:
                        if pkt.problem.startswith("truncated pcap") or pkt.problem.startswith("bad pcapng"):
                            out.quarantine(pkt.index, f"capture: {pkt.problem}", pkt.raw, "pcap")
                        else:
                            out.message("pcap_packet_not_asterix_udp")
                        continue
                    session.feed(pkt.payload, pkt.time_s, pkt.index)
                session.flush()
            else:
                session = _Session(self.registry, out, anchor, worker, b"")
                buf, base = head, 0
                while True:
                    cut = _complete_prefix(buf)
                    if cut:
                        session.feed(buf[:cut], math.nan, None, base=base)
                        session.flush()
                        buf, base = buf[cut:], base + cut
                    more = _read_some(stream)
                    if not more:
                        break
                    buf += more
                if buf:
                    session.feed(buf, math.nan, None, base=base)
                session.flush()
        finally:
            worker.close()
        return out.stats


def _read_some(stream: IO[bytes], size: int = 1 << 16) -> bytes:
    """What the stream has now (at least one byte unless at its end)."""
    read1 = getattr(stream, "read1", None)
    data = read1(size) if read1 is not None else stream.read(size)
    return bytes(data or b"")


def _complete_prefix(buf: bytes) -> int:
    """Length of the longest prefix made of whole data blocks (by their LEN fields). A header
    that cannot be a block ends the walk there, so the framer can resynchronise on it."""
    p, n = 0, len(buf)
    while p + 3 <= n:
        size = (buf[p + 1] << 8) | buf[p + 2]
        if size < 4:
            return n  # garbage: let the framer quarantine and resynchronise
        if p + size > n:
            break
        p += size
    return p


class _Session:
    """State of one read: pending CAT048 blocks (decoded in bulk), the clock, the worker."""

    def __init__(
        self,
        registry: SensorRegistry,
        out: Emitter,
        anchor: TimeAnchor,
        worker: DecoderWorker,
        data: bytes,
    ) -> None:
        self.registry = registry
        self.out = out
        self.anchor = anchor
        self.worker = worker
        # buffer, start, end, packet time, position cited, byte offset of the block in the stream
        self._pending: list[tuple[bytes, int, int, float, int, int]] = []

    def feed(self, buf: bytes, packet_time_s: float, packet_index: int | None, base: int = 0) -> None:
        """Frame and decode ``buf``; ``base`` is its byte offset in the stream (for citations)."""
        for cat, start, end in frame_blocks(buf):
            pos = packet_index if packet_index is not None else base + start
            if cat == 48:
                self._pending.append((buf, start, end, packet_time_s, pos, base + start))
                continue
            self.flush()
            raw = buf[start:end]
            if cat < 0:
                self.out.quarantine(pos, "cannot frame ASTERIX data block", raw, "LEN")
            elif cat in _LIBRARY_CATEGORIES:
                self._library_block(cat, raw, packet_time_s, pos)
            else:
                self.out.quarantine(pos, f"ASTERIX CAT{cat:03d} is not supported", raw, "CAT")

    # -- CAT048 in bulk ------------------------------------------------------------------------
    def flush(self) -> None:
        if not self._pending:
            return
        pending, self._pending = self._pending, []
        # Concatenate the pending payloads into one buffer for the kernel.
        pieces = [buf[s:e] for buf, s, e, _, _, _ in pending]
        lengths = np.array([len(p) for p in pieces], dtype=np.int64)
        offsets = np.concatenate([[0], np.cumsum(lengths)[:-1]])
        data = b"".join(pieces)
        recs = decode_cat048(data, offsets + 3, offsets + lengths)
        blocks_time = np.array([t for _, _, _, t, _, _ in pending], dtype=np.float64)
        blocks_pos = np.array([pos for _, _, _, _, pos, _ in pending], dtype=np.int64)
        blocks_file_start = np.array([f for _, _, _, _, _, f in pending], dtype=np.int64)
        pkt_time = blocks_time[recs.block]
        # Raw files cite the record's byte offset in the file; captures cite the packet number.
        in_file = blocks_file_start[recs.block] + (recs.start - offsets[recs.block])
        rec_pos = np.where(np.isnan(pkt_time), in_file, blocks_pos[recs.block])
        self._emit_cat048(recs, data, pkt_time, rec_pos)

    def _emit_cat048(
        self,
        recs: Cat048Records,
        data: bytes,
        pkt_time: npt.NDArray[np.float64],
        rec_pos: npt.NDArray[np.int64],
    ) -> None:
        n = len(recs)
        if n == 0:
            return
        time_s = self.anchor.resolve(np.where(recs.error == 0, recs.tod_s, np.nan), pkt_time)
        # Per-sensor constants, gathered per record through the SAC/SIC code (no per-record lookups).
        code = np.where(recs.sac >= 0, recs.sac * 256 + recs.sic, -1)
        codes, inverse = np.unique(code, return_inverse=True)
        ids, labels, owners = [], [], []
        site = np.full((codes.size, 3), np.nan)
        sig = np.empty((codes.size, 3))
        for k, c in enumerate(codes.tolist()):
            sid, label, owner = self.registry.label(f"asterix:{c >> 8}/{c & 0xFF}")
            sensor = self.registry.get(f"asterix:{c >> 8}/{c & 0xFF}")
            ids.append(sid)
            labels.append(label)
            owners.append(owner)
            site[k] = _site(sensor)
            s_ = sensor or DEFAULT_RADAR
            sig[k] = (s_.sigma_range_m, s_.sigma_azimuth_deg, s_.sigma_v_m)
        s_site, s_sig = site[inverse], sig[inverse]
        range_m = recs.rho_nm * NM_M
        alt_m = recs.flight_level * 100.0 * FT_M
        g_lat, g_lon, g_sig = ground_from_slant(
            range_m, recs.theta_deg, s_site[:, 0], s_site[:, 1], s_site[:, 2], s_sig[:, 0], s_sig[:, 1]
        )
        has_height = recs.fl_valid & ~recs.fl_garbled & np.isfinite(recs.flight_level)
        # What each record becomes, decided for all records at once (first matching rule wins).
        action = np.select(
            [
                recs.error != 0,
                recs.sim,
                recs.tst,
                recs.rab,
                ~np.isfinite(recs.rho_nm),
                code < 0,
                ~np.isfinite(time_s),
                has_height,
                np.isfinite(g_lat),
            ],
            [_A_ERROR, _A_SIM, _A_TST, _A_RAB, _A_NOPOS, _A_NOSRC, _A_NOTIME, _A_POLAR, _A_GROUND],
            default=_A_NOSITE,
        ).tolist()
        v0 = np.where(has_height, range_m, g_lat).tolist()
        v1 = np.where(has_height, recs.theta_deg, g_lon).tolist()
        v2 = alt_m.tolist()
        sr, saz, sv, sg = s_sig[:, 0].tolist(), s_sig[:, 1].tolist(), s_sig[:, 2].tolist(), g_sig.tolist()
        times, inv = time_s.tolist(), inverse.tolist()
        icao = recs.icao.tolist()
        callsigns = recs.callsign.tolist()
        pos, starts, lengths = rec_pos.tolist(), recs.start.tolist(), recs.length.tolist()
        errors = recs.error.tolist()
        out, polar, ground = self.out, MeasurementKind.POLAR_HEIGHT, MeasurementKind.GROUND_2D
        source = out.source
        for i in range(n):
            act = action[i]
            if act in _A_MESSAGES:
                out.message(_A_MESSAGES[act])
                continue
            if act in _A_QUARANTINE:
                reason, fld = _A_QUARANTINE[act]
                if act == _A_ERROR:
                    reason = ERROR_TEXT[errors[i]]
                out.quarantine(pos[i], reason, data[starts[i] : starts[i] + lengths[i]], fld)
                continue
            k = inv[i]
            cs = callsigns[i].decode("ascii", "replace").strip() or None
            identity = f"icao:{icao[i]:06X}" if icao[i] >= 0 else None
            if act == _A_POLAR:
                obs = Observation(
                    times[i],
                    ids[k],
                    polar,
                    (v0[i], v1[i], v2[i]),
                    (sr[i], saz[i], sv[i]),
                    identity=identity,
                    callsign=cs,
                    releasable_to=labels[k],
                    originator=owners[k],
                    source=SourceRef(source, pos[i]),
                )
            else:
                obs = Observation(
                    times[i],
                    ids[k],
                    ground,
                    (v0[i], v1[i]),
                    (sg[i],),
                    identity=identity,
                    callsign=cs,
                    releasable_to=labels[k],
                    originator=owners[k],
                    source=SourceRef(source, pos[i]),
                )
            out.observations((obs,))

    # -- library categories --------------------------------------------------------------------
    def _library_block(self, cat: int, raw: bytes, packet_time_s: float, pos: int) -> None:
        status, value = self.worker.parse(raw)
        if status != "ok" or not isinstance(value, list) or not value:
            missing = status == "error" and isinstance(value, str) and "not installed" in value
            reason = value if status == "crash" or missing else "asterix-decoder could not decode the block"
            self.out.quarantine(pos, str(reason), raw, f"CAT{cat:03d}")
            return
        used = 0
        for rec in value:
            if not isinstance(rec, dict):
                continue
            rec_pos = pos + 3 + used if math.isnan(packet_time_s) else pos
            used += int(rec.get("len", 0) or 0)
            try:
                self._library_record(cat, rec, raw, packet_time_s, rec_pos)
            except (ValueError, TypeError, KeyError, OverflowError) as e:
                log.debug("CAT%03d record at %s: %s", cat, pos, e)
                hexdata = rec.get("hexdata")
                rraw = bytes.fromhex(hexdata) if isinstance(hexdata, str) else raw
                self.out.quarantine(pos, f"CAT{cat:03d} record has invalid values", rraw, f"CAT{cat:03d}")
        if used != len(raw) - 3:
            # Bytes the library did not account for as records (undecodable tail).
            self.out.quarantine(pos, "ASTERIX data block has undecodable bytes", raw, "LEN")

    def _library_record(
        self, cat: int, rec: dict[str, Any], raw: bytes, packet_time_s: float, pos: int
    ) -> None:
        if cat == 34:
            kind = _CAT034_TYPES.get(_val(rec, "I000", "MsgTyp"), "other")
            self.out.message(f"asterix_cat034_{kind}")
            return
        if cat == 65:
            kind = _CAT065_TYPES.get(_val(rec, "I000", "Typ"), "other")
            self.out.message(f"asterix_cat065_{kind}")
            return
        if cat in _COUNTED_CATEGORIES:
            self.out.message(f"asterix_cat{cat:03d}")
            return
        hexdata = rec.get("hexdata")
        rraw = bytes.fromhex(hexdata) if isinstance(hexdata, str) else raw
        sac, sic = _val(rec, "I010", "SAC"), _val(rec, "I010", "SIC")
        if sac is None or sic is None:
            self.out.quarantine(pos, f"CAT{cat:03d} record without I010 SAC/SIC", rraw, "I010")
            return
        raw_id = f"asterix:{sac}/{sic}"
        if cat == 62:
            self._cat062(rec, rraw, raw_id, int(sac), int(sic), packet_time_s, pos)
        else:
            self._cat021(rec, rraw, raw_id, packet_time_s, pos)

    def _time(self, tod: Any, packet_time_s: float) -> float:
        if tod is None:
            return math.nan
        return float(self.anchor.resolve(np.array([float(tod)]), np.array([packet_time_s]))[0])

    def _cat062(
        self, rec: dict[str, Any], raw: bytes, raw_id: str, sac: int, sic: int, pkt: float, pos: int
    ) -> None:
        if _val(rec, "I080", "SIM") == 1:
            self.out.message("asterix_cat062_simulated")
            return
        t = self._time(_val(rec, "I070", "ToT"), pkt)
        if not math.isfinite(t):
            self.out.quarantine(pos, "CAT062 track without I070 time of track", raw, "I070")
            return
        lat, lon = _val(rec, "I105", "Lat"), _val(rec, "I105", "Lon")
        if lat is None or lon is None or not (-90 <= lat <= 90 and -180 <= lon <= 180):
            self.out.quarantine(pos, "CAT062 track without a valid I105 WGS-84 position", raw, "I105")
            return
        alt_ft = _val(rec, "I130", "Alt")
        if alt_ft is None:
            alt_ft = _val(rec, "I136", "MFL")
        if alt_ft is None:
            alt_ft = _val(rec, "I135", "CTBA")
        sid, label, owner = self.registry.label(raw_id)
        sensor = self.registry.get(raw_id)
        sig_h = sensor.sigma_h_m if sensor else DEFAULT_TRACK_SIGMA_H_M
        sig_v = sensor.sigma_v_m if sensor else DEFAULT_TRACK_SIGMA_V_M
        vx, vy = _val(rec, "I185", "Vx"), _val(rec, "I185", "Vy")
        roc = _val(rec, "I220", "RoC")
        vel = None
        if vx is not None and vy is not None:
            vel = (float(vx), float(vy), float(roc) * FPM_MPS if roc is not None else 0.0)
        adr = _val(rec, "I380", "ADR", "ADR")
        tn = _val(rec, "I040", "TrkN")
        if isinstance(adr, str) and adr.strip():
            identity: str | None = f"icao:{adr.strip().upper()}"
        elif tn is not None:
            identity = f"track:{sac}/{sic}:{int(tn)}"
        else:
            identity = None
        acid = _val(rec, "I380", "ID", "ACID") or _val(rec, "I390", "CSN", "CS")
        callsign = acid.strip() if isinstance(acid, str) and acid.strip() else None
        value: tuple[float, ...]
        sigma: tuple[float, ...]
        if alt_ft is not None:
            kind, value, sigma = (
                MeasurementKind.GEODETIC,
                (float(lat), float(lon), float(alt_ft) * FT_M),
                (sig_h, sig_v),
            )
        else:
            kind, value, sigma = MeasurementKind.GROUND_2D, (float(lat), float(lon)), (sig_h,)
        self.out.observations(
            [
                Observation(
                    t,
                    sid,
                    kind,
                    value,
                    sigma,
                    velocity_enu_mps=vel,
                    velocity_sigma_mps=DEFAULT_TRACK_SIGMA_VEL_MPS if vel else math.nan,
                    identity=identity,
                    callsign=callsign,
                    releasable_to=label,
                    originator=owner,
                    source=self.out.ref(pos),
                )
            ]
        )

    def _cat021(self, rec: dict[str, Any], raw: bytes, raw_id: str, pkt: float, pos: int) -> None:
        if _val(rec, "I040", "SIM") == 1 or _val(rec, "I040", "TST") == 1:
            self.out.message("asterix_cat021_test_or_simulated")
            return
        tod = None
        for item, name in (
            ("I073", "time_reception_position"),
            ("I071", "time_applicability_position"),
            ("I075", "time_reception_velocity"),
            ("I077", "time_report_transmission"),
        ):
            tod = _val(rec, item, name)
            if tod is not None:
                break
        t = self._time(tod, pkt)
        if not math.isfinite(t):
            self.out.quarantine(pos, "CAT021 report without a time of day", raw, "I073")
            return
        lat, lon = _val(rec, "I131", "Lat"), _val(rec, "I131", "Lon")
        if lat is None or lon is None:
            lat, lon = _val(rec, "I130", "Lat"), _val(rec, "I130", "Lon")
        if lat is None or lon is None:
            self.out.message("asterix_cat021_no_position")
            return
        if not (-90 <= lat <= 90 and -180 <= lon <= 180):
            self.out.quarantine(pos, "CAT021 report with an invalid position", raw, "I130")
            return
        alt_ft = _val(rec, "I140", "geometric_height")
        if alt_ft is None:
            fl = _val(rec, "I145", "FL")
            alt_ft = None if fl is None else float(fl) * 100.0
        sid, label, owner = self.registry.label(raw_id)
        sensor = self.registry.get(raw_id)
        sig_h = sensor.sigma_h_m if sensor else DEFAULT_ADSB_SIGMA_H_M
        sig_v = sensor.sigma_v_m if sensor else DEFAULT_ADSB_SIGMA_V_M
        addr = _val(rec, "I080", "TAddr")
        identity = f"icao:{addr.upper()}" if isinstance(addr, str) and _val(rec, "I040", "ATP") == 0 else None
        tid = _val(rec, "I170", "TId")
        callsign = tid.strip() if isinstance(tid, str) and tid.strip() else None
        gs, ta = _val(rec, "I160", "GS"), _val(rec, "I160", "TA")
        vr = _val(rec, "I157", "GVR")
        if vr is None:
            vr = _val(rec, "I155", "BVR")
        vel = None
        if gs is not None and ta is not None:
            gs_mps = float(gs) * NM_M
            tr = math.radians(float(ta))
            vel = (
                gs_mps * math.sin(tr),
                gs_mps * math.cos(tr),
                float(vr) * FPM_MPS if vr is not None else 0.0,
            )
        ecat = _val(rec, "I020", "ECAT")
        value: tuple[float, ...]
        sigma: tuple[float, ...]
        if alt_ft is not None:
            kind, value, sigma = (
                MeasurementKind.GEODETIC,
                (float(lat), float(lon), float(alt_ft) * FT_M),
                (sig_h, sig_v),
            )
        else:
            kind, value, sigma = MeasurementKind.GROUND_2D, (float(lat), float(lon)), (sig_h,)
        self.out.observations(
            [
                Observation(
                    t,
                    sid,
                    kind,
                    value,
                    sigma,
                    velocity_enu_mps=vel,
                    velocity_sigma_mps=1.0 if vel else math.nan,
                    identity=identity,
                    callsign=callsign,
                    category=f"ecat:{int(ecat)}" if ecat is not None else None,
                    releasable_to=label,
                    originator=owner,
                    source=self.out.ref(pos),
                )
            ]
        )


def _site(sensor: Sensor | None) -> tuple[float, float, float]:
    if sensor is None or not sensor.has_site:
        return math.nan, math.nan, 0.0
    return sensor.lat_deg, sensor.lon_deg, sensor.alt_m


def ground_from_slant(
    range_m: npt.ArrayLike,
    azimuth_deg: npt.ArrayLike,
    site_lat_deg: npt.ArrayLike,
    site_lon_deg: npt.ArrayLike,
    site_alt_m: npt.ArrayLike,
    sigma_range_m: npt.ArrayLike,
    sigma_azimuth_deg: npt.ArrayLike,
) -> tuple[npt.NDArray[np.float64], npt.NDArray[np.float64], npt.NDArray[np.float64]]:
    """Ground point (lat, lon) and horizontal sigma of height-less radar plots (see the module
    docstring: nominal altitude NOMINAL_ALT_M, altitude anywhere in 0..ALT_SPAN_M)."""
    r = np.asarray(range_m, dtype=np.float64)
    rs = EARTH_RADIUS_M + np.asarray(site_alt_m, dtype=np.float64)

    def ground(h: float) -> npt.NDArray[np.float64]:
        rt = EARTH_RADIUS_M + h
        cos_c = (rs * rs + rt * rt - r * r) / (2.0 * rs * rt)
        return np.asarray(EARTH_RADIUS_M * np.arccos(np.clip(cos_c, -1.0, 1.0)))

    d = ground(NOMINAL_ALT_M)
    ambiguity = np.abs(ground(0.0) - ground(ALT_SPAN_M)) / math.sqrt(12.0)
    radial = np.sqrt(np.asarray(sigma_range_m, dtype=np.float64) ** 2 + ambiguity**2)
    cross = d * np.radians(np.asarray(sigma_azimuth_deg, dtype=np.float64))
    lat, lon = destination(site_lat_deg, site_lon_deg, azimuth_deg, d)
    return np.asarray(lat), np.asarray(lon), np.maximum(radial, cross)


register(
    "asterix",
    AsterixReader,
    sniff,
    "ASTERIX CAT048/062/021/034 radar and surveillance data, raw blocks or pcap/pcapng captures",
)
