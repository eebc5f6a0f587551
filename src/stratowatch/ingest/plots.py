"""Generic plots CSV, the tracker benchmark format -> LOCAL_XYZ observations.

Header (any column order; extra columns are ignored)::

    time_s,sensor_id,x_m,y_m,z_m,sigma_m,sigma_z_m

``time_s`` is POSIX seconds UTC; ``x_m, y_m, z_m`` are in the tracker's local flat frame;
``sigma_m`` is the horizontal 1-sigma per axis and ``sigma_z_m`` the vertical one. Each data line
is one unit; a bad line is quarantined with the field named in the reason.
"""

from __future__ import annotations

from typing import IO

from stratowatch.ingest._emit import Emitter, FieldError, csv_header, csv_rows, parse_float
from stratowatch.ingest.base import IngestStats, ReadContext, Sink, register
from stratowatch.ingest.registry import EMPTY_REGISTRY, SensorRegistry
from stratowatch.model import MeasurementKind, Observation

COLUMNS = ("time_s", "sensor_id", "x_m", "y_m", "z_m", "sigma_m", "sigma_z_m")


class PlotsReader:
    name = "plots"

    def __init__(self, registry: SensorRegistry = EMPTY_REGISTRY) -> None:
        self.registry = registry

    def read(self, stream: IO[bytes], ctx: ReadContext, sink: Sink) -> IngestStats:
        out = Emitter(sink, ctx.source)
        checked = False
        for number, raw, row in csv_rows(stream, out):
            if not checked:
                missing = [c for c in COLUMNS if c not in row]
                if missing:
                    out.quarantine(number, f"plots CSV header lacks column {missing[0]!r}", raw, missing[0])
                    continue
                checked = True
            try:
                t = parse_float(row["time_s"], "time_s", lo=-1e11, hi=1e11)
                x = parse_float(row["x_m"], "x_m")
                y = parse_float(row["y_m"], "y_m")
                z = parse_float(row["z_m"], "z_m")
                s = parse_float(row["sigma_m"], "sigma_m", lo=1e-9)
                sz = parse_float(row["sigma_z_m"], "sigma_z_m", lo=1e-9)
                if not row["sensor_id"]:
                    raise FieldError("sensor_id", "missing value")
            except FieldError as e:
                out.quarantine(number, f"plots: {e.field}: {e.reason}", raw, e.field)
                continue
            sid, label, owner = self.registry.label(row["sensor_id"])
            out.observations(
                [
                    Observation(
                        t,
                        sid,
                        MeasurementKind.LOCAL_XYZ,
                        (x, y, z),
                        (s, sz),
                        releasable_to=label,
                        originator=owner,
                        source=out.ref(number),
                    )
                ]
            )
        return out.stats


def sniff(head: bytes) -> bool:
    cols = csv_header(head)
    return all(c in cols for c in COLUMNS)


register(
    "plots",
    PlotsReader,
    sniff,
    "Benchmark plots CSV: time_s,sensor_id,x_m,y_m,z_m,sigma_m,sigma_z_m",
)
