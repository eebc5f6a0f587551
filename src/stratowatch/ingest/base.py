"""What every reader shares: the Reader protocol, the registry, quarantine and counts.

A reader turns input units (lines, frames, datagrams, messages) into
:class:`~stratowatch.model.Observation` objects. Every unit ends as exactly one of:

* one or more observations,
* a recognised non-positional message (counted under ``messages[<kind>]``), or
* a :class:`QuarantineRecord` holding the raw bytes and the reason.

A parser error never stops a feed: readers catch per-unit errors and quarantine the unit.
"""

from __future__ import annotations

import json
import zlib
from collections import Counter
from collections.abc import Callable, Iterable, Iterator
from dataclasses import dataclass, field
from datetime import date
from pathlib import Path
from typing import IO, Protocol, runtime_checkable

from stratowatch.model import Observation, SourceRef


@dataclass(frozen=True, slots=True)
class QuarantineRecord:
    """An input unit that could not be used, kept with its raw bytes and the reason."""

    source: SourceRef
    reason: str
    raw: bytes
    field: str | None = None

    def to_json(self) -> str:
        return json.dumps(
            {
                "source": self.source.source,
                "position": self.source.position,
                "field": self.field,
                "reason": self.reason,
                "raw_hex": self.raw.hex(),
                "raw_text": self.raw.decode("utf-8", "replace"),
            }
        )


@dataclass(slots=True)
class IngestStats:
    """Counts for one read: every unit read is accounted for exactly once."""

    units: int = 0
    observations: int = 0
    units_with_observations: int = 0
    messages: Counter[str] = field(default_factory=Counter)
    quarantined: Counter[str] = field(default_factory=Counter)
    crc_failures: int = 0

    @property
    def accounted(self) -> int:
        return self.units_with_observations + sum(self.messages.values()) + sum(self.quarantined.values())

    def as_dict(self) -> dict[str, object]:
        return {
            "units": self.units,
            "observations": self.observations,
            "messages": dict(self.messages),
            "quarantined": dict(self.quarantined),
            "crc_failures": self.crc_failures,
        }


@dataclass(frozen=True, slots=True)
class ReadContext:
    """What a reader needs to know beyond the bytes.

    ``date_utc`` anchors formats that carry only a time of day (SBS, ASTERIX); readers roll the
    date over at midnight. ``sensor_id`` names the sensor when the format does not.
    """

    source: str
    sensor_id: str = "default"
    date_utc: date | None = None
    reference_lat_deg: float | None = None
    reference_lon_deg: float | None = None


class Sink(Protocol):
    """Where a reader puts its results."""

    def observation(self, obs: Observation) -> None: ...

    def message(self, kind: str) -> None: ...

    def quarantine(self, record: QuarantineRecord) -> None: ...


@runtime_checkable
class Reader(Protocol):
    """A format: reads a stream of bytes into a Sink. One instance per stream (may keep state,
    e.g. CPR frame pairs or the last ASTERIX time of day)."""

    name: str

    def read(self, stream: IO[bytes], ctx: ReadContext, sink: Sink) -> IngestStats: ...


ReaderFactory = Callable[[], Reader]
Sniffer = Callable[[bytes], bool]

_REGISTRY: dict[str, tuple[ReaderFactory, Sniffer | None, str]] = {}


def register(name: str, factory: ReaderFactory, sniff: Sniffer | None = None, help: str = "") -> None:
    """Register a reader by format name; ``sniff(head_bytes)`` lets ``--format auto`` find it."""
    _REGISTRY[name] = (factory, sniff, help)


def reader_names() -> list[str]:
    _load_builtins()
    return sorted(_REGISTRY)


def get_reader(name: str) -> Reader:
    _load_builtins()
    try:
        factory = _REGISTRY[name][0]
    except KeyError:
        raise KeyError(f"unknown format {name!r}; known formats: {', '.join(sorted(_REGISTRY))}") from None
    return factory()


def sniff_format(head: bytes) -> str | None:
    """The first registered format whose sniffer accepts the first bytes of a file (of the
    decompressed data when the file is gzip: gzip-aware readers then get the file as it is)."""
    _load_builtins()
    if head[:2] == b"\x1f\x8b":
        try:
            head = zlib.decompressobj(31).decompress(head, 8192)
        except zlib.error:
            return None
    for name, (_, sniff, _) in _REGISTRY.items():
        if sniff is not None and sniff(head):
            return name
    return None


_BUILTINS_LOADED = False


def _load_builtins() -> None:
    """Import the built-in reader modules (each registers itself), then entry points."""
    global _BUILTINS_LOADED
    if _BUILTINS_LOADED:
        return
    _BUILTINS_LOADED = True
    import importlib
    import pkgutil
    from importlib.metadata import entry_points

    import stratowatch.ingest as pkg

    for info in pkgutil.iter_modules(pkg.__path__):
        if info.name not in {"base", "sources", "replay"} and not info.name.startswith("_"):
            importlib.import_module(f"stratowatch.ingest.{info.name}")
    for ep in entry_points(group="stratowatch.readers"):
        ep.load()


class CollectingSink:
    """A Sink that keeps everything in lists (tests, small files, the CLI)."""

    def __init__(self) -> None:
        self.observations: list[Observation] = []
        self.messages: Counter[str] = Counter()
        self.quarantined: list[QuarantineRecord] = []

    def observation(self, obs: Observation) -> None:
        self.observations.append(obs)

    def message(self, kind: str) -> None:
        self.messages[kind] += 1

    def quarantine(self, record: QuarantineRecord) -> None:
        self.quarantined.append(record)


def read_file(
    path: str | Path, fmt: str, ctx: ReadContext | None = None
) -> tuple[CollectingSink, IngestStats]:
    """Read a whole file with a named format into memory."""
    p = Path(path)
    reader = get_reader(fmt)
    sink = CollectingSink()
    with p.open("rb") as f:
        stats = reader.read(f, ctx or ReadContext(source=str(p)), sink)
    return sink, stats


def iter_lines(stream: IO[bytes]) -> Iterator[tuple[int, bytes]]:
    """(1-based line number, line without newline) for a byte stream."""
    for n, line in enumerate(stream, start=1):
        yield n, line.rstrip(b"\r\n")


def first_bytes(paths: Iterable[Path], n: int = 4096) -> dict[Path, bytes]:
    out = {}
    for p in paths:
        with p.open("rb") as f:
            out[p] = f.read(n)
    return out
