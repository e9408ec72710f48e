"""Fixtures for the publishing tests: the stand-ins over real HTTP, a real store (a
SQLite file per test; PostgreSQL for the tests marked ``postgres``), the seed catalog
pointed at the stand-ins."""

from __future__ import annotations

from collections.abc import AsyncIterator, Iterator
from pathlib import Path

import httpx
import pytest
from pgkit import reset_schema
from publishing_testkit import Alerts, copy_catalog
from sqlalchemy.engine import Engine

from newsroom.catalog.catalog import Catalog
from newsroom.catalog.validation import load_catalog
from newsroom.store import make_engine, upgrade_database


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


@pytest.fixture
def postgres_engine(postgres_url: str) -> Iterator[Engine]:
    """An engine on an empty, migrated schema of the session's PostgreSQL database."""
    upgrade_database(reset_schema(postgres_url))
    engine = make_engine(postgres_url)
    yield engine
    engine.dispose()
