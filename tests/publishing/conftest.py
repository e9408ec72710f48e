"""Fixtures for the publishing tests: the stand-ins over real HTTP, a real store (a
SQLite file per test; PostgreSQL for the tests marked ``postgres``), the seed catalog
pointed at the stand-ins."""

from __future__ import annotations

import os
import secrets
from collections.abc import AsyncIterator, Iterator
from pathlib import Path

import httpx
import pytest
from publishing_testkit import Alerts, copy_catalog
from sqlalchemy import create_engine, text
from sqlalchemy.engine import Engine, make_url
from sqlalchemy.exc import OperationalError
from sqlalchemy.pool import NullPool

from newsroom.catalog.catalog import Catalog
from newsroom.catalog.validation import load_catalog
from newsroom.standins import StandinControl, running_standins
from newsroom.store import make_engine, upgrade_database

POSTGRES_CANDIDATES = (
    "postgresql+psycopg://postgres@127.0.0.1:5432/test",
    "postgresql+psycopg://root@127.0.0.1:5432/test",
)


@pytest.fixture
def anyio_backend() -> str:
    return "asyncio"


@pytest.fixture(scope="session")
def standins_url() -> Iterator[str]:
    with running_standins() as url:
        yield url


@pytest.fixture(scope="session")
def _control(standins_url: str) -> Iterator[StandinControl]:
    with StandinControl(standins_url) as control:
        yield control


@pytest.fixture
def standins(_control: StandinControl) -> StandinControl:
    """The stand-ins' control client, with a clean slate for each test."""
    _control.reset()
    return _control


@pytest.fixture(scope="session")
def catalog_dir(tmp_path_factory: pytest.TempPathFactory, standins_url: str) -> Path:
    return copy_catalog(tmp_path_factory.mktemp("catalog") / "campaigns", standins_url)


@pytest.fixture(scope="session")
def catalog(catalog_dir: Path) -> Catalog:
    report = load_catalog(catalog_dir)
    assert report.catalog is not None and report.ok, [i.format() for i in report.errors]
    return report.catalog


@pytest.fixture
def database_url(tmp_path: Path) -> str:
    url = f"sqlite:///{tmp_path / 'newsroom.db'}"
    upgrade_database(url)
    return url


@pytest.fixture
def engine(database_url: str) -> Iterator[Engine]:
    engine = make_engine(database_url)
    yield engine
    engine.dispose()


@pytest.fixture
async def client() -> AsyncIterator[httpx.AsyncClient]:
    async with httpx.AsyncClient(timeout=5) as http:
        yield http


@pytest.fixture
def alerts() -> Alerts:
    return Alerts()


# --- PostgreSQL: one fresh database per session, dropped at the end -------------------


def _admin_engine() -> Engine:
    override = os.environ.get("NEWSROOM_TEST_POSTGRES_URL")
    failures = []
    for url in (override,) if override else POSTGRES_CANDIDATES:
        admin = create_engine(url, isolation_level="AUTOCOMMIT", poolclass=NullPool)
        try:
            with admin.connect() as connection:
                connection.execute(text("SELECT 1"))
        except OperationalError as exc:
            admin.dispose()
            failures.append(f"  {make_url(url).render_as_string()}: {exc.orig}")
            continue
        return admin
    pytest.fail("PostgreSQL is not reachable; tried:\n" + "\n".join(failures)
                + "\nStart it on 127.0.0.1:5432, set NEWSROOM_TEST_POSTGRES_URL, or deselect "
                "with -m 'not postgres'.", pytrace=False)


@pytest.fixture(scope="session")
def postgres_url() -> Iterator[str]:
    admin = _admin_engine()
    name = f"newsroom_test_{secrets.token_hex(6)}"
    with admin.connect() as connection:
        connection.exec_driver_sql(f'CREATE DATABASE "{name}"')
    try:
        yield make_url(admin.url).set(database=name).render_as_string(hide_password=False)
    finally:
        with admin.connect() as connection:
            connection.exec_driver_sql(f'DROP DATABASE IF EXISTS "{name}" WITH (FORCE)')
        admin.dispose()


@pytest.fixture
def postgres_engine(postgres_url: str) -> Iterator[Engine]:
    """An engine on an empty, migrated schema of the session's PostgreSQL database."""
    reset = create_engine(postgres_url, isolation_level="AUTOCOMMIT", poolclass=NullPool)
    try:
        with reset.connect() as connection:
            connection.exec_driver_sql("DROP SCHEMA IF EXISTS public CASCADE")
            connection.exec_driver_sql("CREATE SCHEMA public")
    finally:
        reset.dispose()
    upgrade_database(postgres_url)
    engine = make_engine(postgres_url)
    yield engine
    engine.dispose()
