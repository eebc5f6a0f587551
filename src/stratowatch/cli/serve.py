"""``stratowatch serve``: the live service (sources, pipeline, store, HTTP API) in one process.

With no ``--config`` it runs on the embedded defaults: SQLite file ``stratowatch.db`` in the
current directory, the in-process bus, the API on 127.0.0.1:8000, no sources (feed it through
the API or configure ``[[sources]]``). Settings come from the TOML file and ``STRATOWATCH_*``
environment variables; ``--host``/``--port``/``--store`` override both.

``--role`` starts one part of a scaled-out deployment instead (see
:mod:`stratowatch.service.roles`): ``ingest``, ``track``, ``predict``, ``api`` or ``alert`` (all
over NATS and one PostgreSQL store); ``all``, the default, is the single process. ``--dask-scheduler``
runs the prediction ensembles on a Dask cluster (``[predictions] dask_scheduler``).
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
@click.option(
    "--role",
    type=click.Choice(["all", "ingest", "track", "predict", "api", "alert"]),
    default="all",
    show_default=True,
    help="Which part to run: all (one process), or one role of a scaled-out deployment over NATS.",
)
@click.option(
    "--dask-scheduler",
    "dask_scheduler",
    metavar="ADDRESS",
    help="Run prediction ensembles on this Dask scheduler (tcp://host:8786) instead of a local pool.",
)
def command(
    config_path: Path | None,
    host: str | None,
    port: int | None,
    store_url: str | None,
    role: str = "all",
    dask_scheduler: str | None = None,
) -> None:
    """Run the live pipeline and the HTTP API until interrupted (Ctrl-C), or one --role of it."""
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
        if dask_scheduler is not None:
            overrides["predictions"] = {**settings.predictions.model_dump(), "dask_scheduler": dask_scheduler}
        if overrides:
            settings = load_settings(config_path, **overrides)
    except ConfigError as exc:
        raise UsageFailure(str(exc)) from None
    start(settings, role=role)


def start(settings: Any, role: str = "all", **kw: Any) -> None:
    """Run the service (or one role); start-up failures (store, winds, geofences, bus) become one
    clear line."""
    from stratowatch.config import ConfigError
    from stratowatch.service.roles import WORKER_ROLES, run_role
    from stratowatch.store import StoreError

    def ready(url: str) -> None:
        if role in WORKER_ROLES:
            click.echo(f"stratowatch {role} role running (store and bus from the settings); Ctrl-C stops")
            return
        what = "serving" if role == "all" else "api role serving"
        click.echo(f"stratowatch {what} on {url} (API {url}/api/v1/, health {url}/health); Ctrl-C stops")

    def login(link: str) -> None:
        click.echo(
            "no accounts yet: created the administrator admin. Open the console once with this "
            f"one-time link (valid 15 minutes): {link}\n"
            "More accounts: stratowatch auth add --help"
        )

    from stratowatch.service.bus_nats import BusUnavailable

    try:
        run_role(settings, role, on_ready=ready, on_login=login, **kw)
    except (ConfigError, StoreError, BusUnavailable) as exc:
        raise UsageFailure(str(exc)) from None
    except OSError as exc:  # the port is taken, the store directory is missing ...
        raise UsageFailure(f"cannot start: {exc.strerror or exc}") from None
    except KeyboardInterrupt:
        pass
