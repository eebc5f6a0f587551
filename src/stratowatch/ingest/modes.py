"""Raw Mode S / ADS-B frames as text, one frame per line.

Accepted line layouts (detected per line):

* bare hex, 14 or 28 digits: ``8D406B902015A678D4D220AA4BDA``
* AVR (dump1090 port 30002): ``*8D406B902015A678D4D220AA4BDA;``; ``@`` + 12 hex digits of a
  12 MHz counter + frame + ``;`` (AVR with MLAT timestamp; the counter is ignored)
* CSV or whitespace separated with a POSIX timestamp: the pyModeS sample files
  (``1457996400,"8D406B90...",406B90,19`` and ``1495353600,4D010D,A00015B7...``), ``ts hex``
* JSON lines with ``timestamp`` and ``frame`` (rs1090 / jet1090 output)

Frames without a timestamp take their arrival time from the reader's ``clock`` (wall clock,
UTC). Gzip-compressed input is read transparently.

Decoding is vectorised per chunk of lines (:mod:`._modes_core`): CRC-24, DF/TC, identification
with emitter category, airborne position with CPR (global from even/odd pairs, then local from
the aircraft's last position, or from the receiver position in the read context), velocity and
NACp. Only airborne positions become observations; every other accepted frame is a counted
message, and bad frames are quarantined (CRC failures are also counted in ``crc_failures``).
"""

from __future__ import annotations

import gzip
import io
import json
import math
import re
import time
import zlib
from collections.abc import Callable, Iterator
from typing import IO

import numpy as np

from stratowatch.ingest import _modes_core as core
from stratowatch.ingest.base import IngestStats, QuarantineRecord, ReadContext, Sink, register
from stratowatch.model import FloatArray, IdentityCodes, ObservationBatch, SourceRef

CHUNK_BYTES = 1 << 20
_HEXCHARS = frozenset(b"0123456789abcdefABCDEF")


class GzipStream:
    """A gzip-decompressing stream that never raises: a corrupt or truncated gzip member ends
    the stream and leaves the reason in ``error`` (readers quarantine it as one unit)."""

    def __init__(self, raw: IO[bytes]) -> None:
        self._gz = gzip.GzipFile(fileobj=raw, mode="rb")
        self.error: str | None = None

    def _guard(self, f: Callable[[int], bytes], n: int) -> bytes:
        if self.error is not None:
            return b""
        try:
            return f(n)
        except (EOFError, OSError, zlib.error) as exc:
            self.error = f"gzip data corrupt or truncated: {exc}"
            return b""

    def read1(self, n: int = -1) -> bytes:
        return self._guard(self._gz.read1, n)

    def read(self, n: int = -1) -> bytes:
        return self._guard(self._gz.read, n)


def maybe_gunzip(stream: IO[bytes]) -> IO[bytes]:
    """Wrap ``stream`` in a :class:`GzipStream` when it starts with the gzip magic."""
    peek = getattr(stream, "peek", None)
    if peek is None:
        stream = io.BufferedReader(stream)  # type: ignore[type-var]
        peek = stream.peek
    try:
        head = peek(2)[:2]
    except (OSError, ValueError):
        return stream
    if head == b"\x1f\x8b":
        return GzipStream(stream)  # type: ignore[return-value]
    return stream


def stream_failure(stream: IO[bytes], unit: int, ctx: ReadContext, sink: Sink, stats: IngestStats) -> None:
    """Quarantine a gzip failure of ``stream`` (if any) as one more unit at position ``unit``."""
    error = getattr(stream, "error", None)
    if error:
        stats.units += 1
        stats.quarantined[error] += 1
        sink.quarantine(QuarantineRecord(SourceRef(ctx.source, unit), error, b"", "gzip"))


def gunzip_head(head: bytes) -> bytes:
    """The start of the decompressed data when ``head`` is the start of a gzip file."""
    if head[:2] != b"\x1f\x8b":
        return head
    try:
        return zlib.decompressobj(31).decompress(head, 8192)
    except zlib.error:
        return b""


def read_chunks(stream: IO[bytes], size: int = CHUNK_BYTES) -> Iterator[bytes]:
    """Chunks of a stream; on sockets and pipes returns what is available (``read1``)."""
    read1 = getattr(stream, "read1", None)
    while True:
        data = read1(size) if read1 is not None else stream.read(size)
        if not data:
            return
        yield data


def iter_line_chunks(
    stream: IO[bytes], size: int = CHUNK_BYTES, first_line: int = 1
) -> Iterator[tuple[int, list[bytes]]]:
    """(first line number, complete lines) chunks; a final unterminated line is included."""
    rest = b""
    line_no = first_line
    for data in read_chunks(stream, size):
        data = rest + data
        cut = data.rfind(b"\n")
        if cut < 0:
            rest = data
            continue
        lines = data[:cut].split(b"\n")
        rest = data[cut + 1 :]
        yield line_no, lines
        line_no += len(lines)
    if rest:
        yield line_no, [rest]


def _is_hex_frame(s: bytes) -> bool:
    return len(s) in (14, 28) and _HEXCHARS.issuperset(s)


def _to_float(s: bytes) -> float:
    try:
        v = float(s)
    except ValueError:
        return math.nan
    return v if math.isfinite(v) else math.nan


def parse_line(line: bytes) -> tuple[bytes | None, float, str | None]:
    """(hex frame, POSIX time or NaN, error) for one line of any accepted layout."""
    s = line.strip().lstrip(b"\xef\xbb\xbf")
    c = s[:1]
    if c == b"{":
        try:
            obj = json.loads(s)
        except (ValueError, UnicodeDecodeError) as exc:
            return None, math.nan, f"not valid JSON: {exc}"
        if not isinstance(obj, dict):
            return None, math.nan, "JSON line is not an object"
        frame = obj.get("frame", obj.get("rawmsg", obj.get("raw")))
        if not isinstance(frame, str):
            return None, math.nan, "JSON line has no 'frame' string"
        ts = obj.get("timestamp", obj.get("ts"))
        t = float(ts) if isinstance(ts, int | float) and math.isfinite(ts) else math.nan
        return frame.encode("ascii", "replace"), t, None
    if c in (b"*", b":"):
        return s[1:].rstrip(b";"), math.nan, None
    if c == b"@":
        body = s[1:].rstrip(b";")
        return body[12:], math.nan, None
    if b"," in s or b" " in s or b"\t" in s:
        fields = [f.strip().strip(b'"') for f in (s.split(b",") if b"," in s else s.split())]
        frame = None
        t = math.nan
        for f in fields:
            if frame is None and _is_hex_frame(f):
                frame = f
            elif math.isnan(t):
                t = _to_float(f)
        if frame is None:
            return None, math.nan, "no 14- or 28-digit hex frame in the line"
        return frame, t, None
    return s, math.nan, None


_FAST_AVR = re.compile(rb"^[ \t]*[*:]?([0-9A-Fa-f]{28}|[0-9A-Fa-f]{14});?[ \t\r]*$", re.M)
_FAST_CSV = re.compile(
    rb'^[ \t]*([0-9]+(?:\.[0-9]*)?)[ \t]*,[ \t]*"?([0-9A-Fa-f]{28}|[0-9A-Fa-f]{14})"?[ \t]*(?:,[^\n]*)?$',
    re.M,
)


def _fast_layout(lines: list[bytes]) -> tuple[list[bytes], FloatArray | None] | None:
    """Bulk parse when every line is bare/AVR hex or ``timestamp,hex[,...]`` (the usual case):
    one regular-expression pass over the chunk instead of one parse per line. None when any
    line is blank or in another layout (then each line is parsed on its own)."""
    if not lines:
        return None
    text = b"\n".join(lines)
    for pattern in (_FAST_CSV, _FAST_AVR):
        found = pattern.findall(text)
        if len(found) != len(lines):
            continue
        if pattern is _FAST_AVR:
            return found, None
        ts, hexes = zip(*found, strict=True)
        return list(hexes), np.array(ts, dtype="S32").astype(np.float64)
    return None


class ModeSReader:
    """Reads text lines of raw Mode S frames (see module docstring)."""

    name = "modes"

    def __init__(self, clock: Callable[[], float] = time.time, chunk_bytes: int = CHUNK_BYTES) -> None:
        self.clock = clock
        self.chunk_bytes = chunk_bytes
        self._decoder: core.ModeSDecoder | None = None
        self.identities = IdentityCodes()
        self.lines_read = 0  # line numbers continue across read() calls (datagrams, reconnects)

    def _dec(self, ctx: ReadContext) -> core.ModeSDecoder:
        if self._decoder is None:
            self._decoder = core.ModeSDecoder(ctx.reference_lat_deg, ctx.reference_lon_deg)
        return self._decoder

    def decode_lines(self, first_line: int, lines: list[bytes], ctx: ReadContext) -> core.AdsbChunk:
        """Decode a list of lines (blank lines are skipped) into a chunk."""
        while lines and not lines[-1].strip():
            lines = lines[:-1]
        fast = _fast_layout(lines)
        if fast is not None:
            fast_hexes, ts = fast
            fast_times = np.full(len(lines), self.clock()) if ts is None else ts
            text_raw = lines if not any(b"\r" in x for x in lines[:1]) else [x.rstrip(b"\r") for x in lines]
            positions_arr = np.arange(first_line, first_line + len(lines), dtype=np.int64)
            return self._dec(ctx).decode(core.hex_to_frames(fast_hexes), fast_times, positions_arr, text_raw)
        positions: list[int] = []
        hexes: list[bytes] = []
        times: list[float] = []
        raws: list[bytes] = []
        errors: list[tuple[int, str]] = []
        now = math.nan
        for k, line in enumerate(lines):
            if not line.strip():
                continue
            frame, t, err = parse_line(line)
            if err is not None or frame is None:
                errors.append((len(hexes), err or "unreadable line"))
                frame = b""
            if math.isnan(t):
                if math.isnan(now):
                    now = self.clock()
                t = now
            positions.append(first_line + k)
            hexes.append(frame)
            times.append(t)
            raws.append(line.rstrip(b"\r"))
        fm = core.hex_to_frames(hexes)
        for i, err in errors:
            fm.ok[i] = False
            fm.reason[i] = err
        return self._dec(ctx).decode(
            fm, np.asarray(times, dtype=np.float64), np.asarray(positions, dtype=np.int64), raws
        )

    def read(self, stream: IO[bytes], ctx: ReadContext, sink: Sink) -> IngestStats:
        stats = IngestStats()
        stream = maybe_gunzip(stream)
        for first, lines in iter_line_chunks(stream, self.chunk_bytes, self.lines_read + 1):
            core.emit(self.decode_lines(first, lines, ctx), ctx, sink, stats)
            self.lines_read = first + len(lines) - 1
        if getattr(stream, "error", None):
            self.lines_read += 1
            stream_failure(stream, self.lines_read, ctx, sink, stats)
        return stats

    def read_batch(self, data: bytes, ctx: ReadContext) -> tuple[ObservationBatch, core.AdsbChunk]:
        """Columnar fast path: decode a whole buffer to an ObservationBatch (no per-row objects)."""
        if data[:2] == b"\x1f\x8b":
            data = GzipStream(io.BytesIO(data)).read()
        chunk = self.decode_lines(1, data.split(b"\n"), ctx)
        return core.to_batch(chunk, ctx, self.identities), chunk


def sniff(head: bytes) -> bool:
    """Text whose first non-blank line holds a Mode S frame in one of the accepted layouts."""
    head = gunzip_head(head)
    for line in head.split(b"\n")[:3]:
        if not line.strip():
            continue
        s = line.strip().lstrip(b"\xef\xbb\xbf")
        if s[:1] == b"{":
            return b'"frame"' in s
        frame, _, err = parse_line(line)
        return err is None and frame is not None and _is_hex_frame(frame)
    return False


register(
    "modes",
    ModeSReader,
    sniff,
    "raw Mode S/ADS-B hex frames: bare, AVR (*...;), CSV with timestamps (pyModeS), rs1090 JSONL",
)
