"""``stratowatch ingest FILE --format NAME [--db PATH] [--quarantine FILE]``: read one sensor
file, print what it held (units read, observations, messages, quarantined by reason) and
optionally store the observations in SQLite.

``--format auto`` (the default) detects the format from the file's first bytes. Formats that
carry only a time of day (ASTERIX) are anchored to ``--date``. ``--sensors`` names a sensor
registry (TOML) that maps sensor ids, owners, sites and releasability labels. Exit status 2 with
one line on stderr for an unknown format or an unreadable file.
"""

from __future__ import annotations

import json
from datetime import date, datetime
from pathlib import Path
from typing import IO

import click

from stratowatch.cli import UsageFailure
from stratowatch.ingest.base import QuarantineRecord
from stratowatch.model import Observation
from stratowatch.store import open_store
from stratowatch.store.base import Store, StoreError, StoreSink


@click.command(help=__doc__)
@click.argument("file", type=click.Path(path_type=Path))
@click.option("-f", "--format", "fmt", default="auto", show_default=True, help="Format name, or auto.")
@click.option(
    "--db",
    help="Store into this database: an SQLite file path, or a URL (sqlite:///x.db, postgresql://...).",
)
@click.option(
    "--quarantine",
    "quarantine_path",
    type=click.Path(dir_okay=False, path_type=Path),
    help="Write quarantine records here as JSON lines.",
)
@click.option("--sensors", type=click.Path(dir_okay=False, path_type=Path), help="Sensor registry (TOML).")
@click.option("--date", "date_text", help="UTC date (YYYY-MM-DD) for formats with only a time of day.")
@click.option(
    "--sensor-id", default="default", show_default=True, help="Sensor id where the format has none."
)
@click.option("--json", "as_json", is_flag=True, help="Print the counts as one JSON object.")
def command(
    file: Path,
    fmt: str,
    db: str | None,
    quarantine_path: Path | None,
    sensors: Path | None,
    date_text: str | None,
    sensor_id: str,
    as_json: bool,
) -> None:
    from stratowatch.ingest.base import ReadContext, reader_names
    from stratowatch.ingest.registry import EMPTY_REGISTRY, RegistryError, load_registry
    from stratowatch.ingest.replay import ReplayInputError, detect_format, open_reader

    registry = EMPTY_REGISTRY
    if sensors is not None:
        try:
            registry = load_registry(sensors)
        except RegistryError as e:
            raise UsageFailure(str(e)) from None
    day = parse_date(date_text)
    if not file.exists():
        raise UsageFailure(f"{file}: no such file")
    if not file.is_file():
        raise UsageFailure(f"{file}: not a regular file")
    try:
        name = detect_format(file) if fmt == "auto" else fmt
        if name not in reader_names():
            raise UsageFailure(f"unknown format {name!r}; known formats: auto, {', '.join(reader_names())}")
        reader = open_reader(name, registry)
    except ReplayInputError as e:
        raise UsageFailure(str(e)) from None

    store = None
    qfile: IO[str] | None = None
    try:
        if db is not None:
            try:
                store = open_store(db if "://" in db else f"sqlite:///{db}")
            except StoreError as e:
                raise UsageFailure(str(e)) from None
        if quarantine_path is not None:
            try:
                qfile = quarantine_path.open("w", encoding="utf-8")
            except OSError as e:
                raise UsageFailure(f"{quarantine_path}: cannot write: {e.strerror or e}") from None
        sink = _CliSink(store, qfile)
        ctx = ReadContext(source=str(file), sensor_id=sensor_id, date_utc=day)
        try:
            with file.open("rb") as f:
                stats = reader.read(f, ctx, sink)
        except OSError as e:
            raise UsageFailure(f"{file}: cannot read: {e.strerror or e}") from None
        sink.flush()
        stored = sink.stored
    finally:
        if qfile is not None:
            qfile.close()
        if store is not None:
            store.close()
    counts = {"file": str(file), "format": name, **stats.as_dict()}
    if db is not None:
        counts["stored"] = stored
    if as_json:
        click.echo(json.dumps(counts))
        return
    click.echo(f"{file}: format {name}")
    click.echo(f"  read          {stats.units} units")
    click.echo(f"  observations  {stats.observations} (from {stats.units_with_observations} units)")
    for kind, n in sorted(stats.messages.items()):
        click.echo(f"  message       {n:6d}  {kind}")
    click.echo(f"  quarantined   {sum(stats.quarantined.values())}")
    for reason, n in sorted(stats.quarantined.items(), key=lambda kv: (-kv[1], kv[0])):
        click.echo(f"    {n:6d}  {reason}")
    if db is not None:
        click.echo(f"  stored        {stored} observations in {db}")


def parse_date(text: str | None) -> date | None:
    if text is None:
        return None
    try:
        return datetime.strptime(text, "%Y-%m-%d").date()
    except ValueError:
        raise UsageFailure(f"--date {text!r}: not a date (YYYY-MM-DD)") from None


class _CliSink:
    """Observations to the store (batched) when there is one; quarantine to JSON lines."""

    def __init__(self, store: Store | None, qfile: IO[str] | None) -> None:
        self._store_sink = StoreSink(store) if store is not None else None
        self._qfile = qfile
        self.stored = 0

    def observation(self, obs: Observation) -> None:
        if self._store_sink is not None:
            self._store_sink.observation(obs)

    def message(self, kind: str) -> None:
        pass

    def quarantine(self, record: QuarantineRecord) -> None:
        if self._qfile is not None:
            self._qfile.write(record.to_json() + "\n")
        if self._store_sink is not None:
            self._store_sink.quarantine(record)

    def flush(self) -> None:
        if self._store_sink is not None:
            self._store_sink.flush()
            self.stored = self._store_sink.written_observations
