"""A real Prefect server for the flow tests, one for the whole session.

By default Prefect's test harness (a server subprocess on a temporary SQLite database).
With ``NEWSROOM_TEST_PREFECT=postgres`` (what ``make test-postgres`` and CI's second pass
set) a ``prefect server start`` subprocess on a fresh PostgreSQL database at
127.0.0.1:5432, and Newsroom's own store on PostgreSQL too (:func:`newsroom_database_url`).
"""

from __future__ import annotations

import os
import secrets
import subprocess
import sys
import tempfile
import time
from collections.abc import Iterator
from pathlib import Path

import httpx
import pytest
from sqlalchemy import create_engine, text
from sqlalchemy.engine import make_url
from sqlalchemy.exc import OperationalError
from sqlalchemy.pool import NullPool

POSTGRES_CANDIDATES = (
    "postgresql+psycopg://postgres@127.0.0.1:5432/test",
    "postgresql+psycopg://root@127.0.0.1:5432/test",
)
ON_POSTGRES = os.environ.get("NEWSROOM_TEST_PREFECT") == "postgres"


def _admin_url() -> str:
    override = os.environ.get("NEWSROOM_TEST_POSTGRES_URL")
    for url in (override,) if override else POSTGRES_CANDIDATES:
        engine = create_engine(url, poolclass=NullPool)
        try:
            with engine.connect() as connection:
                connection.execute(text("SELECT 1"))
            return url
        except OperationalError:
            continue
        finally:
            engine.dispose()
    pytest.fail("NEWSROOM_TEST_PREFECT=postgres but PostgreSQL at 127.0.0.1:5432 is not "
                "reachable", pytrace=False)


@pytest.fixture(scope="session")
def postgres_databases() -> Iterator[dict[str, str]]:
    """Two fresh PostgreSQL databases (Prefect's and Newsroom's), dropped at the end."""
    admin_url = _admin_url()
    admin = create_engine(admin_url, isolation_level="AUTOCOMMIT", poolclass=NullPool)
    suffix = secrets.token_hex(5)
    names = {"prefect": f"prefect_test_{suffix}", "newsroom": f"newsroom_flows_{suffix}"}
    with admin.connect() as connection:
        for name in names.values():
            connection.exec_driver_sql(f'CREATE DATABASE "{name}"')
    base = make_url(admin_url)
    try:
        yield {
            "prefect": base.set(drivername="postgresql+asyncpg", database=names["prefect"])
            .render_as_string(hide_password=False),
            "newsroom": base.set(database=names["newsroom"]).render_as_string(
                hide_password=False),
        }
    finally:
        with admin.connect() as connection:
            for name in names.values():
                connection.exec_driver_sql(f'DROP DATABASE IF EXISTS "{name}" WITH (FORCE)')
        admin.dispose()


def _prefect_on_postgres(database_url: str) -> Iterator[None]:
    from prefect.settings import PREFECT_API_URL, temporary_settings

    port = _free_port()
    home = Path(tempfile.mkdtemp(prefix="prefect-pg-"))
    env = {**os.environ, "PREFECT_HOME": str(home), "PREFECT_SERVER_ANALYTICS_ENABLED": "false",
           "PREFECT_API_DATABASE_CONNECTION_URL": database_url}
    env.pop("PREFECT_API_URL", None)
    server = subprocess.Popen([sys.executable, "-m", "prefect", "server", "start", "--host",
                               "127.0.0.1", "--port", str(port)], env=env,
                              stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
    url = f"http://127.0.0.1:{port}/api"
    deadline = time.monotonic() + 120
    try:
        while True:
            try:
                if httpx.get(f"{url}/health", timeout=2).status_code == 200:
                    break
            except httpx.HTTPError:
                pass
            if time.monotonic() > deadline or server.poll() is not None:
                pytest.fail("the Prefect server on PostgreSQL did not start", pytrace=False)
            time.sleep(0.5)
        with temporary_settings({PREFECT_API_URL: url}):
            yield
    finally:
        server.terminate()
        try:
            server.wait(20)
        except subprocess.TimeoutExpired:
            server.kill()


def _free_port() -> int:
    import socket

    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return sock.getsockname()[1]


@pytest.fixture(scope="session")
def prefect_server(request: pytest.FixtureRequest):
    if ON_POSTGRES:
        databases = request.getfixturevalue("postgres_databases")
        yield from _prefect_on_postgres(databases["prefect"])
        return
    from prefect.testing.utilities import prefect_test_harness

    with prefect_test_harness(server_startup_timeout=60):
        yield


@pytest.fixture
def newsroom_database_url(request: pytest.FixtureRequest, tmp_path: Path) -> str:
    """Newsroom's store for a flow test: SQLite, or PostgreSQL in the PostgreSQL pass."""
    if ON_POSTGRES:
        return request.getfixturevalue("postgres_databases")["newsroom"]
    return f"sqlite:///{tmp_path / 'newsroom.db'}"
