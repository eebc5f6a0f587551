"""``stratowatch serve``: the live service (sources, pipeline, store, HTTP API) in one process.

With no ``--config`` it runs on the embedded defaults: SQLite file ``stratowatch.db`` in the
current directory, the in-process bus, the API on 127.0.0.1:8000, no sources (feed it through
the API or configure ``[[sources]]``). Settings come from the TOML file and ``STRATOWATCH_*``
environment variables; ``--host``/``--port``/``--store`` override both.
"""

from __future__ import annotations

import logging
from pathlib import Path
from typing import Any

import click

from stratowatch.cli import UsageFailure

log = logging.getLogger(__name__)


@click.command("serve")
@click.option(
    "--config",
    "config_path",
    type=click.Path(dir_okay=False, path_type=Path),
    help="Settings file (TOML); see examples/stratowatch.toml.",
)
@click.option("--host", help="Listen address (overrides api.host).")
@click.option("--port", type=int, help="Listen port (overrides api.port; 0 picks a free one).")
@click.option("--store", "store_url", help="Store URL (overrides store_url).")
def command(config_path: Path | None, host: str | None, port: int | None, store_url: str | None) -> None:
    """Run the live pipeline and the HTTP API until interrupted (Ctrl-C)."""
    from stratowatch.config import ConfigError, load_settings

    overrides: dict[str, Any] = {}
    try:
        settings = load_settings(config_path)
        api = settings.api.model_dump()
        if host is not None:
            api["host"] = host
        if port is not None:
            api["port"] = port
        if host is not None or port is not None:
            overrides["api"] = api
        if store_url is not None:
            overrides["store_url"] = store_url
        if overrides:
            settings = load_settings(config_path, **overrides)
    except ConfigError as exc:
        raise UsageFailure(str(exc)) from None
    start(settings)


def start(settings: Any, **kw: Any) -> None:
    """Run the service; start-up failures (store, winds, geofences) become one clear line."""
    from stratowatch.config import ConfigError
    from stratowatch.service.app import run
    from stratowatch.store import StoreError

    def ready(url: str) -> None:
        click.echo(f"stratowatch serving on {url} (API {url}/api/v1/, health {url}/health); Ctrl-C stops")

    def login(link: str) -> None:
        click.echo(
            "no accounts yet: created the administrator admin. Open the console once with this "
            f"one-time link (valid 15 minutes): {link}\n"
            "More accounts: stratowatch auth add --help"
        )

    try:
        run(settings, on_ready=ready, on_login=login, **kw)
    except (ConfigError, StoreError) as exc:
        raise UsageFailure(str(exc)) from None
    except OSError as exc:  # the port is taken, the store directory is missing ...
        raise UsageFailure(f"cannot start: {exc.strerror or exc}") from None
    except KeyboardInterrupt:
        pass
