"""The Beast binary feed (Mode-S Beast, dump1090/readsb port 30005, traffic's ``.bin`` files).

Each frame is ``0x1a``, a type byte, a 6-byte timestamp, a signal byte and the payload; a
``0x1a`` inside a frame is sent twice. Types: ``'1'`` Mode A/C (2 bytes), ``'2'`` Mode S short
(7 bytes), ``'3'`` Mode S long (14 bytes), ``'4'`` receiver status (14 bytes).

Mode S payloads are decoded by the vectorised Mode S core (same rules as :mod:`.modes`);
Mode A/C and status frames are counted messages, and bytes between frames are quarantined.

Time (``time_mode``):

* ``"counter"`` (default): the timestamp is a free-running 12 MHz counter; the first frame is
  stamped with the reader's clock (wall clock, UTC) and later frames by counter differences
  (re-anchored when the counter jumps back). Frames with a zero timestamp take the clock.
* ``"gps"``: GPS receivers put the second of the day in the top 18 bits and nanoseconds in the
  low 30; the day comes from ``ReadContext.date_utc`` with midnight roll-over.
* ``"arrival"``: every frame gets the clock's time when it is read.
"""

from __future__ import annotations

import datetime as dt
import time
from collections.abc import Callable
from dataclasses import dataclass
from typing import IO, Literal

import numpy as np

from stratowatch.ingest import _modes_core as core
from stratowatch.ingest.base import IngestStats, ReadContext, Sink, register
from stratowatch.ingest.modes import (
    CHUNK_BYTES,
    gunzip_head,
    maybe_gunzip,
    read_chunks,
    stream_failure,
)
from stratowatch.model import IdentityCodes, ObservationBatch

ESC = 0x1A
PAYLOAD_BYTES = {0x31: 2, 0x32: 7, 0x33: 14, 0x34: 14}
COUNTER_HZ = 12_000_000.0

TimeMode = Literal["counter", "gps", "arrival"]


@dataclass(slots=True)
class BeastFrame:
    type: int
    timestamp: int
    signal: int
    payload: bytes
    raw: bytes


def deframe(buf: bytes, final: bool = False) -> tuple[list[BeastFrame | bytes], int]:
    """Split a buffer into frames and garbage spans (``bytes`` items).

    Returns the items and the number of bytes consumed; an incomplete frame at the end is left
    for the next buffer unless ``final``.
    """
    items: list[BeastFrame | bytes] = []
    i = 0
    n = len(buf)
    garbage_from = -1
    while i < n:
        j = buf.find(b"\x1a", i)
        if j < 0:
            j = n
        if j > i:
            if garbage_from < 0:
                garbage_from = i
            i = j
            continue
        if j + 1 >= n:
            break  # lone 0x1a at the end: wait for more
        ftype = buf[j + 1]
        plen = PAYLOAD_BYTES.get(ftype)
        if plen is None:  # not a frame start (or an escaped 0x1a outside a frame)
            if garbage_from < 0:
                garbage_from = j
            i = j + 1 if ftype != ESC else j + 2
            continue
        need = 7 + plen
        body_start = j + 2
        if buf.find(b"\x1a", body_start, body_start + need) < 0:
            if body_start + need > n:
                break  # incomplete
            body = buf[body_start : body_start + need]
            end = body_start + need
        else:  # escapes inside: unescape byte by byte
            out = bytearray()
            k = body_start
            broken = False
            while len(out) < need and k < n:
                b = buf[k]
                if b == ESC:
                    if k + 1 >= n:
                        break
                    if buf[k + 1] != ESC:
                        broken = True
                        break
                    k += 2
                else:
                    k += 1
                out.append(b)
            if broken:  # a new frame started inside this one: the partial frame is garbage
                if garbage_from < 0:
                    garbage_from = j
                i = k
                continue
            if len(out) < need:
                break  # incomplete
            body = bytes(out)
            end = k
        if garbage_from >= 0:
            items.append(buf[garbage_from:j])
            garbage_from = -1
        items.append(BeastFrame(ftype, int.from_bytes(body[:6], "big"), body[6], body[7:], buf[j:end]))
        i = end
    if garbage_from >= 0:
        items.append(buf[garbage_from:i])
    if final and i < n:
        items.append(buf[i:])
        i = n
    return items, i


class BeastReader:
    """Reads the Beast binary format (see module docstring)."""

    name = "beast"

    def __init__(
        self,
        time_mode: TimeMode = "counter",
        clock: Callable[[], float] = time.time,
        chunk_bytes: int = CHUNK_BYTES,
    ) -> None:
        self.chunk_bytes = chunk_bytes
        self.time_mode = time_mode
        self.clock = clock
        self.identities = IdentityCodes()
        self._decoder: core.ModeSDecoder | None = None
        self._anchor: tuple[float, int] | None = None  # (time_s, counter) of the anchor frame
        self._day_s: float | None = None
        self._last_tod_s = -1.0
        self._frame_no = 0

    def _times(self, stamps: list[int], ctx: ReadContext) -> np.ndarray:
        now = self.clock()
        if self.time_mode == "arrival":
            return np.full(len(stamps), now)
        out = np.empty(len(stamps))
        if self.time_mode == "gps":
            if self._day_s is None:
                day = ctx.date_utc or dt.datetime.now(dt.UTC).date()
                self._day_s = dt.datetime(day.year, day.month, day.day, tzinfo=dt.UTC).timestamp()
            for k, ts in enumerate(stamps):  # per frame: a few integer operations
                tod = (ts >> 30) + (ts & 0x3FFFFFFF) * 1e-9
                if self._last_tod_s >= 0 and tod < self._last_tod_s - 43200.0:
                    self._day_s += 86400.0
                self._last_tod_s = tod
                out[k] = self._day_s + tod
            return out
        for k, ts in enumerate(stamps):
            if ts == 0:
                out[k] = now
                continue
            if self._anchor is None or ts < self._anchor[1]:
                self._anchor = (now, ts)
            out[k] = self._anchor[0] + (ts - self._anchor[1]) / COUNTER_HZ
        return out

    def decode_items(self, items: list[BeastFrame | bytes], ctx: ReadContext) -> core.AdsbChunk:
        if self._decoder is None:
            self._decoder = core.ModeSDecoder(ctx.reference_lat_deg, ctx.reference_lon_deg)
        n = len(items)
        positions = np.arange(self._frame_no + 1, self._frame_no + 1 + n, dtype=np.int64)
        self._frame_no += n
        payloads: list[bytes] = []
        raws: list[bytes] = []
        stamps: list[int] = []
        for it in items:
            if isinstance(it, BeastFrame):
                payloads.append(it.payload if it.type in (0x32, 0x33) else b"")
                raws.append(it.raw)
                stamps.append(it.timestamp)
            else:
                payloads.append(b"")
                raws.append(it)
                stamps.append(0)
        fm = core.bytes_to_frames(payloads)
        for k, it in enumerate(items):
            if not isinstance(it, BeastFrame):
                fm.reason[k] = "bytes outside a Beast frame"
        chunk = self._decoder.decode(fm, self._times(stamps, ctx), positions, raws)
        # Mode A/C and status frames are messages, not bad frames
        other = [k for k, it in enumerate(items) if isinstance(it, BeastFrame) and it.type in (0x31, 0x34)]
        if other:
            names = chunk.message_names
            for extra in ("beast_mode_ac", "beast_status"):
                if extra not in names:
                    names = [*names, extra]
            chunk.message_names = names
            idx = np.asarray(other)
            kinds = np.array([0x31 if items[k].type == 0x31 else 0x34 for k in other])  # type: ignore[union-attr]
            chunk.message[idx] = np.where(
                kinds == 0x31, names.index("beast_mode_ac"), names.index("beast_status")
            )
            chunk.outcome[idx] = core.OUTCOME_MESSAGE
            drop = set(other)
            chunk.quarantine = [q for q in chunk.quarantine if q[0] not in drop]
        return chunk

    def read(self, stream: IO[bytes], ctx: ReadContext, sink: Sink) -> IngestStats:
        stats = IngestStats()
        rest = b""
        stream = maybe_gunzip(stream)
        for data in read_chunks(stream, self.chunk_bytes):
            buf = rest + data
            items, used = deframe(buf)
            rest = buf[used:]
            if items:
                core.emit(self.decode_items(items, ctx), ctx, sink, stats)
        if rest:
            items, _ = deframe(rest, final=True)
            if items:
                core.emit(self.decode_items(items, ctx), ctx, sink, stats)
        stream_failure(stream, self._frame_no + 1, ctx, sink, stats)
        self._frame_no += 1 if getattr(stream, "error", None) else 0
        return stats

    def read_batch(self, data: bytes, ctx: ReadContext) -> tuple[ObservationBatch, core.AdsbChunk]:
        """Columnar fast path: a whole buffer to an ObservationBatch."""
        items, _ = deframe(data, final=True)
        chunk = self.decode_items(items, ctx)
        return core.to_batch(chunk, ctx, self.identities), chunk


def sniff(head: bytes) -> bool:
    """Starts with a Beast frame, and the next frame starts where the first one ends."""
    head = gunzip_head(head)
    if len(head) < 2 or head[0] != ESC or head[1] not in PAYLOAD_BYTES:
        return False
    items, _ = deframe(head[:512])
    frames = [it for it in items if isinstance(it, BeastFrame)]
    return len(frames) >= 2 or (len(frames) == 1 and len(head) <= 2 * len(frames[0].raw))


register("beast", BeastReader, sniff, "Beast binary (dump1090/readsb port 30005, .bin recordings)")
