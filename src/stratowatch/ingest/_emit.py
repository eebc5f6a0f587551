"""Shared plumbing of the file readers: one place that keeps the sink and the counts in step,
and small field parsers whose errors name the field."""

from __future__ import annotations

import csv
import math
from collections.abc import Iterator, Sequence
from datetime import UTC, datetime
from typing import IO

from stratowatch.ingest.base import IngestStats, QuarantineRecord, Sink
from stratowatch.model import Observation, SourceRef


class Emitter:
    """Sends results to a sink and counts them so that every unit is accounted for once."""

    def __init__(self, sink: Sink, source: str) -> None:
        self.sink = sink
        self.source = source
        self.stats = IngestStats()

    def ref(self, position: int) -> SourceRef:
        return SourceRef(self.source, position)

    def observations(self, observations: Sequence[Observation]) -> None:
        """One unit that produced these observations (at least one)."""
        self.stats.units += 1
        self.stats.units_with_observations += 1
        self.stats.observations += len(observations)
        for o in observations:
            self.sink.observation(o)

    def message(self, kind: str) -> None:
        """One unit that is a recognised non-positional message."""
        self.stats.units += 1
        self.stats.messages[kind] += 1
        self.sink.message(kind)

    def quarantine(self, position: int, reason: str, raw: bytes, field: str | None = None) -> None:
        """One unit that could not be used: kept with its raw bytes under a stable reason."""
        self.stats.units += 1
        self.stats.quarantined[reason] += 1
        self.sink.quarantine(QuarantineRecord(self.ref(position), reason, raw, field))


class FieldError(ValueError):
    """A bad field in one input unit; ``field`` names it and ``reason`` is a stable category."""

    def __init__(self, field: str, reason: str, detail: str = "") -> None:
        super().__init__(f"field {field!r}: {reason}{': ' + detail if detail else ''}")
        self.field = field
        self.reason = reason


def parse_float(text: str | None, field: str, *, lo: float = -math.inf, hi: float = math.inf) -> float:
    """A finite number within [lo, hi]; raises FieldError naming the field otherwise."""
    if text is None or not text.strip():
        raise FieldError(field, "missing value")
    try:
        v = float(text)
    except ValueError:
        raise FieldError(field, "not a number", repr(text)) from None
    if not math.isfinite(v):
        raise FieldError(field, "not a finite number", repr(text))
    if not lo <= v <= hi:
        raise FieldError(field, "out of range", f"{v} not in [{lo}, {hi}]")
    return v


def parse_optional_float(
    text: str | None, field: str, *, lo: float = -math.inf, hi: float = math.inf
) -> float | None:
    if text is None or not text.strip():
        return None
    return parse_float(text, field, lo=lo, hi=hi)


def parse_time_utc(text: str | None, field: str) -> float:
    """POSIX seconds from an ISO-8601 time (``Z`` or an offset; naive times are taken as UTC) or
    from a plain number of POSIX seconds."""
    if text is None or not text.strip():
        raise FieldError(field, "missing value")
    s = text.strip()
    try:
        return parse_float(s, field, lo=-1e11, hi=1e11)
    except FieldError:
        pass
    try:
        dt = datetime.fromisoformat(s.replace("Z", "+00:00").replace("z", "+00:00"))
    except ValueError:
        raise FieldError(field, "not an ISO-8601 time", repr(text)) from None
    if dt.tzinfo is None:
        dt = dt.replace(tzinfo=UTC)
    return dt.timestamp()


def csv_rows(stream: IO[bytes], out: Emitter) -> Iterator[tuple[int, bytes, dict[str, str]]]:
    """(line number, raw line, row dict) for a headed CSV; the header is the first non-blank
    line (a UTF-8 BOM is dropped, names are lower-cased and stripped). Lines that are not UTF-8
    or have the wrong number of fields are quarantined here; blank and ``#`` lines are skipped."""
    header: list[str] | None = None
    for number, raw in enumerate(stream, start=1):
        line_bytes = raw.rstrip(b"\r\n")
        if number == 1 and line_bytes.startswith(b"\xef\xbb\xbf"):
            line_bytes = line_bytes[3:]
        if not line_bytes.strip() or line_bytes.lstrip().startswith(b"#"):
            continue
        try:
            text = line_bytes.decode("utf-8")
        except UnicodeDecodeError:
            out.quarantine(number, "line is not UTF-8 text", line_bytes)
            continue
        try:
            fields_ = next(csv.reader([text]), [])
        except csv.Error:  # e.g. a lone carriage return inside the line
            out.quarantine(number, "line is not valid CSV", line_bytes)
            continue
        if header is None:
            header = [f.strip().lower() for f in fields_]
            continue
        if len(fields_) != len(header):
            out.quarantine(number, f"wrong number of fields (the header has {len(header)})", line_bytes)
            continue
        yield number, line_bytes, dict(zip(header, (f.strip() for f in fields_), strict=True))


def csv_header(head: bytes) -> list[str]:
    """The lower-cased column names of the first non-blank line of a CSV head (for sniffers)."""
    text = head.decode("utf-8", "replace").lstrip("\ufeff")
    for line in text.splitlines():
        if line.strip() and not line.lstrip().startswith("#"):
            try:
                return [f.strip().lower() for f in next(csv.reader([line]), [])]
            except csv.Error:
                return []
    return []
