"""Store fixtures: every store test runs against SQLite and against PostgreSQL + PostGIS.

PostgreSQL comes from, in order: ``STRATOWATCH_TEST_PG_URL`` (a server URL whose user may
create databases); a server answering on 127.0.0.1:5432 as user ``postgres``; or a throwaway
cluster started here (``initdb`` + ``pg_ctl`` from /usr/lib/postgresql/*/bin, on a free port, as a
non-root user when running as root). ``STRATOWATCH_TEST_PG_OWN=1`` skips the probe of :5432.
The run creates one database ``sw_test_<random>`` and drops it at the end; each test starts from
empty tables. PostgreSQL tests skip, saying why, only when no server can be had.
"""

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
from typing import Any
from urllib.parse import quote

import pytest

from stratowatch.store.base import TABLES, StoreError

BACKENDS = ["sqlite", "postgres"]
_LOCAL_URL = "postgresql://postgres@127.0.0.1:5432/postgres"


def _psycopg() -> Any:
    return pytest.importorskip("psycopg", reason="psycopg is not installed (pip install 'psycopg[binary]')")


def _answers(url: str) -> bool:
    psycopg = _psycopg()
    try:
        with psycopg.connect(url, connect_timeout=2):
            return True
    except psycopg.Error:
        return False


def _free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return int(s.getsockname()[1])


def with_database(url: str, dbname: str) -> str:
    """The libpq URL of another database on the same server as ``url``."""
    psycopg = _psycopg()
    info = psycopg.conninfo.conninfo_to_dict(url)
    user = quote(str(info.get("user") or "postgres"))
    password = info.get("password")
    auth = f"{user}:{quote(str(password))}" if password else user
    host = info.get("host") or "127.0.0.1"
    return f"postgresql://{auth}@{host}:{info.get('port') or 5432}/{dbname}"


@contextlib.contextmanager
def _own_cluster() -> Iterator[str]:
    bins = sorted(glob.glob("/usr/lib/postgresql/*/bin/initdb"))
    if not bins:
        pytest.skip("no PostgreSQL server answers on 127.0.0.1:5432 and no initdb under /usr/lib/postgresql")
    bindir = Path(bins[-1]).parent
    top = Path(tempfile.mkdtemp(prefix="sw-pg-"))
    run_as: list[str] = []
    if os.geteuid() == 0:  # initdb refuses root: run the cluster as a plain user
        user = "postgres"
        try:
            pwd.getpwnam(user)
        except KeyError:
            user = "nobody"
        shutil.chown(top, user=user)
        top.chmod(0o700)
        run_as = ["runuser", "-u", user, "--"]
    data, port = top / "data", _free_port()
    try:
        subprocess.run(
            [*run_as, str(bindir / "initdb"), "-D", str(data), "-A", "trust", "-U", "postgres", "--no-sync"],
            check=True,
            capture_output=True,
        )
        options = f"-F -p {port} -k {top} -c listen_addresses=127.0.0.1"
        subprocess.run(
            [
                *run_as,
                str(bindir / "pg_ctl"),
                "-D",
                str(data),
                "-o",
                options,
                "-l",
                str(top / "log"),
                "-w",
                "start",
            ],
            check=True,
            capture_output=True,
        )
    except subprocess.CalledProcessError as e:
        shutil.rmtree(top, ignore_errors=True)
        pytest.skip(f"could not start a throwaway PostgreSQL: {e.stderr.decode(errors='replace')[-300:]}")
    try:
        yield f"postgresql://postgres@127.0.0.1:{port}/postgres"
    finally:
        subprocess.run(
            [*run_as, str(bindir / "pg_ctl"), "-D", str(data), "-m", "immediate", "-w", "stop"],
            check=False,
            capture_output=True,
        )
        shutil.rmtree(top, ignore_errors=True)


@pytest.fixture(scope="session")
def pg_server_url() -> Iterator[str]:
    """A URL to a PostgreSQL server's maintenance database, whose user may create databases."""
    url = os.environ.get("STRATOWATCH_TEST_PG_URL")
    if url:
        if not _answers(url):
            pytest.fail(f"STRATOWATCH_TEST_PG_URL={url}: the server does not answer")
        yield url
    elif os.environ.get("STRATOWATCH_TEST_PG_OWN") != "1" and _answers(_LOCAL_URL):
        yield _LOCAL_URL
    else:
        with _own_cluster() as own:
            yield own


@pytest.fixture(scope="session")
def pg_database_url(pg_server_url: str) -> Iterator[str]:
    """A fresh database ``sw_test_<random>`` for this run, migrated once; dropped at the end."""
    psycopg = _psycopg()
    name = f"sw_test_{secrets.token_hex(6)}"
    with psycopg.connect(pg_server_url, autocommit=True) as admin:
        admin.execute(f"CREATE DATABASE {name}")
    url = with_database(pg_server_url, name)
    try:
        from stratowatch.store.postgres import PostgresStore

        try:
            PostgresStore(url).close()
        except StoreError as e:
            if "postgis" in str(e).lower():
                pytest.skip(f"PostGIS is not available on the test server: {e}")
            raise
        yield url
    finally:
        with psycopg.connect(pg_server_url, autocommit=True) as admin:
            admin.execute(f"DROP DATABASE IF EXISTS {name} WITH (FORCE)")


def empty_tables(url: str) -> None:
    psycopg = _psycopg()
    with psycopg.connect(url, autocommit=True) as conn:
        conn.execute(f"TRUNCATE {', '.join(TABLES)} RESTART IDENTITY")


def store_url(backend: str, tmp_path: Path, request: pytest.FixtureRequest) -> str:
    """A URL of an empty store of ``backend`` for one test."""
    if backend == "sqlite":
        return f"sqlite:///{tmp_path / 'store.db'}"
    url: str = request.getfixturevalue("pg_database_url")
    empty_tables(url)
    return url


@pytest.fixture
def pg_url(pg_database_url: str) -> str:
    """The run's PostgreSQL database, emptied for this test."""
    empty_tables(pg_database_url)
    return pg_database_url


@pytest.fixture
def pg_missing_database_url(pg_server_url: str) -> str:
    """A URL to a database that does not exist on the test server."""
    return with_database(pg_server_url, f"sw_missing_{secrets.token_hex(4)}")


@pytest.fixture
def fresh_url(backend: str, tmp_path: Path, request: pytest.FixtureRequest) -> Iterator[str]:
    """A URL to a new, empty database (no schema at all) of ``backend``, removed afterwards."""
    if backend == "sqlite":
        yield f"sqlite:///{tmp_path / 'fresh.db'}"
        return
    psycopg = _psycopg()
    server: str = request.getfixturevalue("pg_server_url")
    request.getfixturevalue("pg_database_url")  # skips here too when PostGIS is missing
    name = f"sw_test_{secrets.token_hex(6)}"
    with psycopg.connect(server, autocommit=True) as admin:
        admin.execute(f"CREATE DATABASE {name}")
    try:
        yield with_database(server, name)
    finally:
        with psycopg.connect(server, autocommit=True) as admin:
            admin.execute(f"DROP DATABASE IF EXISTS {name} WITH (FORCE)")


@pytest.fixture(params=BACKENDS)
def backend(request: pytest.FixtureRequest) -> str:
    return str(request.param)


@pytest.fixture
def url(backend: str, tmp_path: Path, request: pytest.FixtureRequest) -> str:
    return store_url(backend, tmp_path, request)


@pytest.fixture
def store(url: str) -> Iterator[Any]:
    from stratowatch.store import open_store

    s = open_store(url)
    try:
        yield s
    finally:
        s.close()
