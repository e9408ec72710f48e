"""Fixtures for the store tests: every database test runs on SQLite and on PostgreSQL.

PostgreSQL: the session's database (``postgres_url``, see tests/pgkit.py); each test gets
an empty ``public`` schema in it.
"""

from __future__ import annotations

from collections.abc import Iterator
from pathlib import Path

import pytest
from pgkit import reset_schema
from sqlalchemy.engine import Engine
from sqlmodel import Session

from newsroom.store import make_engine, upgrade_database


@pytest.fixture(params=["sqlite", pytest.param("postgresql", marks=pytest.mark.postgres)])
def empty_database_url(request: pytest.FixtureRequest, tmp_path: Path) -> str:
    """URL of an empty database (no tables at all) on either backend."""
    if request.param == "sqlite":
        return f"sqlite:///{tmp_path / 'newsroom.db'}"
    return reset_schema(request.getfixturevalue("postgres_url"))


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
