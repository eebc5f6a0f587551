"""``stratowatch auth``: who may call the API (principals, their secrets and tokens).

Works on the store named by ``--config`` / ``--store`` (as ``serve``), so it can run beside a
serving node or before it starts::

    stratowatch auth add --id alice --partner CAN --kind user --scopes tracks:read,alerts:ack
    stratowatch auth list
    stratowatch auth disable alice
    stratowatch auth token --id ingest-bot --scopes observations:write --ttl-s 86400
    stratowatch auth login-url --id alice

``add`` prints the new credential (``sw_<id>.<secret>``) once; only its hash is kept.
"""

from __future__ import annotations

import contextlib
from collections.abc import Iterator
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
def _authority(config_path: Path | None, store_url: str | None) -> Iterator[tuple[Any, Any]]:
    from stratowatch.config import ConfigError, load_settings
    from stratowatch.sharing.auth import Authority
    from stratowatch.store import StoreError, open_store

    try:
        overrides: dict[str, Any] = {"store_url": store_url} if store_url else {}
        settings = load_settings(config_path, None, check_files=False, **overrides)
        store = open_store(settings.store_url)
    except (ConfigError, StoreError) as exc:
        raise UsageFailure(str(exc)) from None
    try:
        yield Authority.from_settings(store, settings), settings
    finally:
        store.close()


@click.group("auth")
def command() -> None:
    """Manage principals (users, service accounts, API keys) and issue tokens."""


@command.command("add")
@click.option("--id", "principal_id", required=True, help="Principal id (letters, digits, _ . @ -).")
@click.option("--partner", required=True, help="Its partner code (CAN, USA...).")
@click.option(
    "--kind",
    type=click.Choice(["user", "service", "key"]),
    default="user",
    show_default=True,
    help="user (password/console), service (client credentials), key (sensor/feeder X-API-Key).",
)
@click.option("--scopes", required=True, help="Comma-separated scopes, e.g. tracks:read,alerts:ack.")
@click.option("--name", default="", help="A readable name.")
@_CONFIG
@_STORE
def add(
    principal_id: str,
    partner: str,
    kind: str,
    scopes: str,
    name: str,
    config_path: Path | None,
    store_url: str | None,
) -> None:
    """Create a principal and print its credential (shown this once)."""
    from stratowatch.sharing.auth import parse_scopes

    try:
        wanted = parse_scopes(scopes) or []
    except ValueError as exc:
        raise UsageFailure(f"--scopes: {exc}") from None
    with _authority(config_path, store_url) as (authority, _):
        try:
            key = authority.create_principal(
                principal_id, partner, kind, wanted, details={"name": name} if name else None
            )
        except ValueError as exc:
            raise UsageFailure(str(exc)) from None
        authority.store.audit(
            "cli",
            "principal_create",
            {"principal_id": principal_id, "partner": partner, "kind": kind, "scopes": wanted},
        )
    click.echo(f"created {kind} {principal_id} ({partner}; {', '.join(wanted)})")
    click.echo(f"credential (shown once, keep it secret): {key}")


@command.command("list")
@_CONFIG
@_STORE
def list_(config_path: Path | None, store_url: str | None) -> None:
    """List the principals (never their secrets)."""
    with _authority(config_path, store_url) as (authority, _):
        recs = authority.store.principals()
    if not recs:
        click.echo("no principals")
        return
    click.echo(f"{'id':<24} {'partner':<8} {'kind':<8} {'state':<9} scopes")
    for r in recs:
        state = "disabled" if r["disabled"] else "active"
        click.echo(
            f"{r['principal_id']:<24} {r['partner']:<8} {r['kind']:<8} {state:<9} {','.join(r['scopes'])}"
        )


@command.command("disable")
@click.argument("principal_id")
@_CONFIG
@_STORE
def disable(principal_id: str, config_path: Path | None, store_url: str | None) -> None:
    """Disable a principal: its credential and tokens are refused from now on."""
    with _authority(config_path, store_url) as (authority, _):
        if not authority.disable(principal_id):
            raise UsageFailure(f"no principal {principal_id}")
        authority.store.audit("cli", "principal_disable", {"principal_id": principal_id})
    click.echo(f"disabled {principal_id}")


@command.command("token")
@click.option("--id", "principal_id", required=True, help="The principal the token speaks for.")
@click.option("--scopes", default=None, help="Narrower scopes (comma-separated; default: all granted).")
@click.option("--ttl-s", type=float, default=None, help="Lifetime in seconds (default: [auth] token_ttl_s).")
@_CONFIG
@_STORE
def token(
    principal_id: str,
    scopes: str | None,
    ttl_s: float | None,
    config_path: Path | None,
    store_url: str | None,
) -> None:
    """Print a bearer token (JWT) signed with the node's secret, for scripts."""
    from stratowatch.sharing.auth import AuthError, parse_scopes

    try:
        wanted = parse_scopes(scopes) if scopes else None
    except ValueError as exc:
        raise UsageFailure(f"--scopes: {exc}") from None
    if ttl_s is not None and not (0 < ttl_s <= 366 * 86400):
        raise UsageFailure("--ttl-s must be in (0, 31622400]")
    with _authority(config_path, store_url) as (authority, _):
        try:
            issued = authority.issue(principal_id, wanted, ttl_s)
        except AuthError as exc:
            raise UsageFailure(f"cannot issue a token for {principal_id}: {exc.reason}") from None
        authority.store.audit("cli", "token_issue", {"sub": principal_id, "jti": issued.claims["jti"]})
    click.echo(issued.token)


@command.command("login-url")
@click.option("--id", "principal_id", required=True, help="The user who will sign in.")
@click.option("--url", "base_url", default=None, help="The console's address (default: from [api]).")
@_CONFIG
@_STORE
def login_url(
    principal_id: str, base_url: str | None, config_path: Path | None, store_url: str | None
) -> None:
    """Print a one-time console sign-in link (valid 15 minutes, once)."""
    from stratowatch.sharing.auth import AuthError

    with _authority(config_path, store_url) as (authority, settings):
        try:
            link = login_link(authority, principal_id, base_url or server_url(settings))
        except AuthError as exc:
            raise UsageFailure(f"cannot sign in {principal_id}: {exc.reason}") from None
        authority.store.audit("cli", "login_link", {"sub": principal_id})
    click.echo(link)


def server_url(settings: Any, port: int | None = None) -> str:
    scheme = "https" if settings.api.tls_certfile else "http"
    return f"{scheme}://{settings.api.host}:{settings.api.port if port is None else port}"


def login_link(authority: Any, principal_id: str, base_url: str, ttl_s: float = 900.0) -> str:
    issued = authority.issue(principal_id, ttl_s=ttl_s, use="login")
    return f"{base_url.rstrip('/')}/?login={issued.token}"


def bootstrap_admin(authority: Any) -> str | None:
    """With no principal at all, create ``admin`` (the node's partner, scope admin) and return
    its id; None when principals exist."""
    if authority.store.principals():
        return None
    principal_id = "admin"
    authority.create_principal(principal_id, authority.node_partner, "user", ["admin"])
    authority.store.audit("serve", "principal_create", {"principal_id": principal_id, "bootstrap": True})
    return principal_id
