"""``stratowatch audit``: read and check the audit log of a node's store.

::

    stratowatch audit verify --config node.toml     # exit 0: chain intact; 1: broken (says where)
    stratowatch audit show --limit 20 --store sqlite:///stratowatch.db

Every release to a partner, every denial and every administrative action is a record of the
log; each record's SHA-256 covers the one before it (see :mod:`stratowatch.sharing.audit`), so
``verify`` finds a record that was changed, inserted or removed, and names it.
"""

from __future__ import annotations

import contextlib
import json
import sys
from collections.abc import Iterator
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

import click

from stratowatch.cli import UsageFailure

_CONFIG = click.option(
    "--config",
    "config_path",
    type=click.Path(dir_okay=False, path_type=Path),
    help="Settings file (TOML), as for serve.",
)
_STORE = click.option("--store", "store_url", help="Store URL (overrides store_url).")


@contextlib.contextmanager
def _store(config_path: Path | None, store_url: str | None) -> Iterator[Any]:
    from stratowatch.config import ConfigError, load_settings
    from stratowatch.store import StoreError, open_store

    try:
        overrides: dict[str, Any] = {"store_url": store_url} if store_url else {}
        settings = load_settings(config_path, None, check_files=False, **overrides)
        store = open_store(settings.store_url)
    except (ConfigError, StoreError) as exc:
        raise UsageFailure(str(exc)) from None
    try:
        yield store
    finally:
        store.close()


@click.group("audit")
def command() -> None:
    """Show and verify the hash-chained audit log."""


@command.command("verify")
@_CONFIG
@_STORE
def verify(config_path: Path | None, store_url: str | None) -> None:
    """Check every record's hash against the one before it; exit 1 naming the first bad record."""
    with _store(config_path, store_url) as store:
        report = store.verify_audit()
    click.echo(str(report))
    if not report.ok:
        sys.exit(1)


@command.command("show")
@_CONFIG
@_STORE
@click.option("--limit", default=50, show_default=True, type=click.IntRange(1, 100_000))
@click.option("--json", "as_json", is_flag=True, help="One JSON object per line.")
def show(config_path: Path | None, store_url: str | None, limit: int, as_json: bool) -> None:
    """The newest records, newest first."""
    with _store(config_path, store_url) as store:
        rows = store.audit_log(limit=limit)
    for r in rows:
        if as_json:
            click.echo(json.dumps(r, separators=(",", ":"), default=str))
            continue
        when = datetime.fromtimestamp(r["time_s"], UTC).strftime("%Y-%m-%d %H:%M:%S")
        details = json.dumps(r["details"], separators=(",", ":"), default=str)
        click.echo(f"{r['id']:>8}  {when}Z  {r['actor']:<20} {r['action']:<16} {details}")
