"""Replay: read sensor files of any formats, merge them in time order and cut them into tracker
steps, paced as if live.

The pieces are separate so each can be used and tested alone:

* :func:`load` reads files (format named or detected) into observations, with counts per file;
* :func:`merge` merges per-file observation lists into one time-ordered list (stable: equal
  times keep file order);
* :func:`steps` cuts a time-ordered list into (step time, observations) pairs: one step per
  ``window_s`` window (default 1 s) of data time; the step time is the last observation time in
  the window, so the tracker never runs ahead of its data;
* :func:`paced` yields the steps no faster than ``speed`` times real time (``speed <= 0``: as
  fast as possible), with an injectable clock for tests.
"""

from __future__ import annotations

import heapq
import math
import time
from collections.abc import Callable, Iterable, Iterator, Sequence
from dataclasses import dataclass, field
from datetime import date
from pathlib import Path

import numpy as np

from stratowatch.ingest.base import (
    CollectingSink,
    IngestStats,
    QuarantineRecord,
    ReadContext,
    Reader,
    get_reader,
    sniff_format,
)
from stratowatch.ingest.registry import EMPTY_REGISTRY, SensorRegistry, UsesSensorRegistry
from stratowatch.model import Observation

Step = tuple[float, list[Observation]]


class ReplayInputError(ValueError):
    """A replay input cannot be read (unreadable file, unknown or undetectable format)."""


@dataclass(slots=True)
class Loaded:
    """What :func:`load` read: observations per file, counts per file, quarantine records."""

    observations: list[list[Observation]] = field(default_factory=list)
    stats: dict[str, IngestStats] = field(default_factory=dict)
    formats: dict[str, str] = field(default_factory=dict)
    quarantined: list[QuarantineRecord] = field(default_factory=list)


def detect_format(path: Path) -> str:
    """The format of a file from its first bytes; raises ReplayInputError when none matches."""
    try:
        with path.open("rb") as f:
            head = f.read(4096)
    except OSError as e:
        raise ReplayInputError(f"{path}: cannot read: {e.strerror or e}") from None
    fmt = sniff_format(head)
    if fmt is None:
        raise ReplayInputError(f"{path}: cannot detect the format; name it with --format")
    return fmt


def open_reader(fmt: str, registry: SensorRegistry) -> Reader:
    """A reader for a format name, given the registry when it uses one."""
    try:
        reader = get_reader(fmt)
    except KeyError as e:
        raise ReplayInputError(str(e.args[0])) from None
    if isinstance(reader, UsesSensorRegistry):
        reader.registry = registry
    return reader


def load(
    paths: Sequence[Path],
    fmt: str = "auto",
    registry: SensorRegistry = EMPTY_REGISTRY,
    date_utc: date | None = None,
) -> Loaded:
    out = Loaded()
    for path in paths:
        name = detect_format(path) if fmt == "auto" else fmt
        reader = open_reader(name, registry)
        sink = CollectingSink()
        ctx = ReadContext(source=str(path), date_utc=date_utc)
        try:
            with path.open("rb") as f:
                stats = reader.read(f, ctx, sink)
        except OSError as e:
            raise ReplayInputError(f"{path}: cannot read: {e.strerror or e}") from None
        out.observations.append(sink.observations)
        out.stats[str(path)] = stats
        out.formats[str(path)] = name
        out.quarantined.extend(sink.quarantined)
    return out


def merge(streams: Iterable[Sequence[Observation]]) -> list[Observation]:
    """One time-ordered list from several (each sorted first; stable for equal times)."""
    ordered = [sorted(s, key=lambda o: o.time_s) for s in streams]
    return list(heapq.merge(*ordered, key=lambda o: o.time_s))


def steps(observations: Sequence[Observation], window_s: float = 1.0) -> Iterator[Step]:
    """Cut time-ordered observations into steps of ``window_s`` of data time."""
    if not observations:
        return
    if not window_s > 0:
        raise ValueError("window_s must be positive")
    t = np.fromiter((o.time_s for o in observations), dtype=np.float64, count=len(observations))
    window = np.floor((t - t[0]) / window_s).astype(np.int64)
    starts = np.flatnonzero(np.r_[True, np.diff(window) != 0])
    ends = np.r_[starts[1:], t.size]
    for s, e in zip(starts.tolist(), ends.tolist(), strict=True):
        yield float(t[e - 1]), list(observations[s:e])


def paced(
    step_iter: Iterable[Step],
    speed: float,
    clock: Callable[[], float] = time.monotonic,
    sleep: Callable[[float], None] = time.sleep,
) -> Iterator[Step]:
    """Yield steps no faster than ``speed`` x real time of their data times (<= 0: no pacing)."""
    wall0 = data0 = math.nan
    for step in step_iter:
        if speed > 0:
            if math.isnan(wall0):
                wall0, data0 = clock(), step[0]
            wait = wall0 + (step[0] - data0) / speed - clock()
            if wait > 0:
                sleep(wait)
        yield step
