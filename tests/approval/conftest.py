"""Fixtures for the approval tests: the test catalog, a real store (SQLite per test, and
PostgreSQL for the tests parametrised with it), a signer."""

from __future__ import annotations

import os
import secrets
from collections.abc import Iterator
from pathlib import Path

import pytest
from approval_testkit import build_catalog, load
from sqlalchemy import create_engine, text
from sqlalchemy.engine import Engine, make_url
from sqlalchemy.exc import OperationalError
from sqlalchemy.pool import NullPool

from newsroom.catalog.catalog import Catalog
from newsroom.signing import Signer
from newsroom.store import make_engine, upgrade_database

POSTGRES_CANDIDATES = (
    "postgresql+psycopg://postgres@127.0.0.1:5432/test",
    "postgresql+psycopg://root@127.0.0.1:5432/test",
)


@pytest.fixture
def anyio_backend() -> str:
    return "asyncio"


@pytest.fixture(scope="session")
def catalog_root(tmp_path_factory: pytest.TempPathFactory) -> Path:
    return build_catalog(tmp_path_factory.mktemp("approval") / "campaigns")


@pytest.fixture(scope="session")
def catalog(catalog_root: Path) -> Catalog:
    return load(catalog_root)


@pytest.fixture
def signer() -> Signer:
    return Signer("test-secret-key-for-approval-links-0123456789")


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
    pytest.fail("PostgreSQL is not reachable; tried:\n" + "\n".join(failures), pytrace=False)


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


@pytest.fixture(params=["sqlite", pytest.param("postgresql", marks=pytest.mark.postgres)])
def engine(request: pytest.FixtureRequest, tmp_path: Path) -> Iterator[Engine]:
    """A migrated store on SQLite (a file per test) or on PostgreSQL (a fresh schema)."""
    if request.param == "sqlite":
        url = f"sqlite:///{tmp_path / 'newsroom.db'}"
    else:
        url = request.getfixturevalue("postgres_url")
        reset = create_engine(url, isolation_level="AUTOCOMMIT", poolclass=NullPool)
        with reset.connect() as connection:
            connection.exec_driver_sql("DROP SCHEMA IF EXISTS public CASCADE")
            connection.exec_driver_sql("CREATE SCHEMA public")
        reset.dispose()
    upgrade_database(url)
    engine = make_engine(url)
    yield engine
    engine.dispose()


@pytest.fixture
def sqlite_engine(tmp_path: Path) -> Iterator[Engine]:
    url = f"sqlite:///{tmp_path / 'newsroom.db'}"
    upgrade_database(url)
    engine = make_engine(url)
    yield engine
    engine.dispose()
