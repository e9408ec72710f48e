"""Fixtures for the store tests: every database test runs on SQLite and on PostgreSQL.

PostgreSQL is expected at 127.0.0.1:5432 (trust auth, user ``postgres`` or ``root``; set
``NEWSROOM_TEST_POSTGRES_URL`` to use another server). One database named
``newsroom_test_<random>`` is created per test session and dropped at its end; each test
gets an empty ``public`` schema in it. An unreachable server fails the postgres tests, it
does not skip them: deselect them explicitly with ``-m "not postgres"``.
"""

from __future__ import annotations

import os
import secrets
from collections.abc import Iterator
from pathlib import Path

import pytest
from sqlalchemy import create_engine, text
from sqlalchemy.engine import Engine, make_url
from sqlalchemy.exc import OperationalError
from sqlalchemy.pool import NullPool
from sqlmodel import Session

from newsroom.store import make_engine, upgrade_database

POSTGRES_CANDIDATES = (
    "postgresql+psycopg://postgres@127.0.0.1:5432/test",
    "postgresql+psycopg://root@127.0.0.1:5432/test",
)


def _admin_engine() -> Engine:
    override = os.environ.get("NEWSROOM_TEST_POSTGRES_URL")
    candidates = (override,) if override else POSTGRES_CANDIDATES
    failures = []
    for url in candidates:
        engine = create_engine(url, isolation_level="AUTOCOMMIT", poolclass=NullPool)
        try:
            with engine.connect() as connection:
                connection.execute(text("SELECT 1"))
        except OperationalError as exc:
            engine.dispose()
            failures.append(f"  {make_url(url).render_as_string()}: {exc.orig}")
            continue
        return engine
    pytest.fail(
        "PostgreSQL is not reachable for the store tests; tried:\n"
        + "\n".join(failures)
        + "\nStart PostgreSQL on 127.0.0.1:5432 (trust auth for postgres or root), point "
        "NEWSROOM_TEST_POSTGRES_URL at a server, or deselect with -m 'not postgres'.",
        pytrace=False,
    )


@pytest.fixture(scope="session")
def postgres_database_url() -> Iterator[str]:
    """URL of a fresh database, created for this test session and dropped afterwards."""
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


def _reset_postgres_schema(url: str) -> None:
    engine = create_engine(url, isolation_level="AUTOCOMMIT", poolclass=NullPool)
    try:
        with engine.connect() as connection:
            connection.exec_driver_sql("DROP SCHEMA IF EXISTS public CASCADE")
            connection.exec_driver_sql("CREATE SCHEMA public")
    finally:
        engine.dispose()


@pytest.fixture(params=["sqlite", pytest.param("postgresql", marks=pytest.mark.postgres)])
def empty_database_url(request: pytest.FixtureRequest, tmp_path: Path) -> str:
    """URL of an empty database (no tables at all) on either backend."""
    if request.param == "sqlite":
        return f"sqlite:///{tmp_path / 'newsroom.db'}"
    url = request.getfixturevalue("postgres_database_url")
    _reset_postgres_schema(url)
    return url


@pytest.fixture
def database_url(empty_database_url: str) -> str:
    """URL of a database migrated to ``head``."""
    upgrade_database(empty_database_url)
    return empty_database_url


@pytest.fixture
def engine(database_url: str) -> Iterator[Engine]:
    engine = make_engine(database_url)
    yield engine
    engine.dispose()


@pytest.fixture
def session(engine: Engine) -> Iterator[Session]:
    with Session(engine, expire_on_commit=False) as session:
        yield session
