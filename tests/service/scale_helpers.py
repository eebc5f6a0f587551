"""Real components on loopback for the scale-out tests: throw-away PostgreSQL databases (on the
server at 127.0.0.1:5432 or ``STRATOWATCH_TEST_PG_URL``) and a private PostgreSQL cluster that a
test may stop and start again (``initdb`` + ``pg_ctl`` from /usr/lib/postgresql/*/bin, as a
plain user when running as root, as tests/store/conftest.py does)."""

from __future__ import annotations

import contextlib
import glob
import os
import pwd
import secrets
import shutil
import socket
import subprocess
import tempfile
from collections.abc import Iterator
from pathlib import Path

import pytest


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return int(s.getsockname()[1])


def pg_server() -> str | None:
    """The maintenance URL of a PostgreSQL server that answers, or None."""
    url = os.environ.get("STRATOWATCH_TEST_PG_URL", "postgresql://postgres@127.0.0.1:5432/postgres")
    try:
        import psycopg

        with psycopg.connect(url, connect_timeout=2):
            return url
    except Exception:
        return None


def _with_db(server: str, name: str) -> str:
    import psycopg

    info = psycopg.conninfo.conninfo_to_dict(server)
    user, host = info.get("user") or "postgres", info.get("host") or "127.0.0.1"
    return f"postgresql://{user}@{host}:{info.get('port') or 5432}/{name}"


@contextlib.contextmanager
def throwaway_database(server: str, prefix: str = "sw_scale") -> Iterator[str]:
    """A new database on ``server`` (migrated; skips without PostGIS), dropped at the end."""
    import psycopg

    from stratowatch.store import StoreError
    from stratowatch.store.postgres import PostgresStore

    name = f"{prefix}_{secrets.token_hex(5)}"
    with psycopg.connect(server, autocommit=True) as admin:
        admin.execute(f"CREATE DATABASE {name}")
    url = _with_db(server, name)
    try:
        try:
            PostgresStore(url).close()
        except StoreError as e:
            if "postgis" in str(e).lower():
                pytest.skip(f"PostGIS is not available: {e}")
            raise
        yield url
    finally:
        with psycopg.connect(server, autocommit=True) as admin:
            admin.execute(f"DROP DATABASE IF EXISTS {name} WITH (FORCE)")


class PrivatePostgres:
    """A PostgreSQL cluster of this test's own on a free port: ``stop()`` (immediate: what a
    crash or a restart looks like to clients) and ``start()`` again, same data, same port."""

    def __init__(self) -> None:
        bins = sorted(glob.glob("/usr/lib/postgresql/*/bin/initdb"))
        if not bins:
            pytest.skip("no initdb under /usr/lib/postgresql: cannot run a private PostgreSQL")
        self.bindir = Path(bins[-1]).parent
        self.top = Path(tempfile.mkdtemp(prefix="sw-pgr-"))
        self.run_as: list[str] = []
        if os.geteuid() == 0:  # initdb refuses root
            user = "postgres"
            try:
                pwd.getpwnam(user)
            except KeyError:
                user = "nobody"
            shutil.chown(self.top, user=user)
            self.top.chmod(0o700)
            self.run_as = ["runuser", "-u", user, "--"]
        self.data = self.top / "data"
        self.port = free_port()
        try:
            subprocess.run(
                [*self.run_as, str(self.bindir / "initdb"), "-D", str(self.data), "-A", "trust",
                 "-U", "postgres", "--no-sync"],
                check=True, capture_output=True,
            )  # fmt: skip
        except subprocess.CalledProcessError as e:
            shutil.rmtree(self.top, ignore_errors=True)
            pytest.skip(f"initdb failed: {e.stderr.decode(errors='replace')[-300:]}")

    @property
    def server_url(self) -> str:
        return f"postgresql://postgres@127.0.0.1:{self.port}/postgres"

    def _ctl(self, *args: str) -> None:
        subprocess.run(
            [*self.run_as, str(self.bindir / "pg_ctl"), "-D", str(self.data), *args],
            check=True, capture_output=True, timeout=60,
        )  # fmt: skip

    def start(self) -> None:
        options = f"-F -p {self.port} -k {self.top} -c listen_addresses=127.0.0.1"
        self._ctl("-o", options, "-l", str(self.top / "log"), "-w", "start")

    def stop(self) -> None:
        self._ctl("-m", "immediate", "-w", "stop")

    def close(self) -> None:
        with contextlib.suppress(Exception):
            self.stop()
        shutil.rmtree(self.top, ignore_errors=True)
