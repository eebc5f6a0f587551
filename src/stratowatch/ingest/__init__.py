"""Sensor ingest: one module per format, each registered by name in :mod:`.base`."""

from stratowatch.ingest.base import (
    CollectingSink,
    IngestStats,
    QuarantineRecord,
    ReadContext,
    Reader,
    get_reader,
    read_file,
    reader_names,
    register,
    sniff_format,
)

__all__ = [
    "CollectingSink",
    "IngestStats",
    "QuarantineRecord",
    "ReadContext",
    "Reader",
    "get_reader",
    "read_file",
    "reader_names",
    "register",
    "sniff_format",
]
