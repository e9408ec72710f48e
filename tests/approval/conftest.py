"""Fixtures for the approval tests: the test catalog, a real store (SQLite per test, and
PostgreSQL for the tests parametrised with it), a signer, a real SMTP server."""

from __future__ import annotations

from collections.abc import Iterator
from pathlib import Path

import pytest
from approval_testkit import build_catalog, load
from mailkit import Inbox, catching_smtp
from pgkit import reset_schema
from sqlalchemy.engine import Engine

from newsroom.catalog.catalog import Catalog
from newsroom.signing import Signer
from newsroom.store import make_engine, upgrade_database


@pytest.fixture(scope="session")
def catalog_root(tmp_path_factory: pytest.TempPathFactory) -> Path:
    return build_catalog(tmp_path_factory.mktemp("approval") / "campaigns")


@pytest.fixture(scope="session")
def catalog(catalog_root: Path) -> Catalog:
    return load(catalog_root)


@pytest.fixture
def signer() -> Signer:
    return Signer("test-secret-key-for-approval-links-0123456789")


@pytest.fixture(params=["sqlite", pytest.param("postgresql", marks=pytest.mark.postgres)])
def engine(request: pytest.FixtureRequest, tmp_path: Path) -> Iterator[Engine]:
    """A migrated store on SQLite (a file per test) or on PostgreSQL (a fresh schema)."""
    if request.param == "sqlite":
        url = f"sqlite:///{tmp_path / 'newsroom.db'}"
    else:
        url = reset_schema(request.getfixturevalue("postgres_url"))
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



@pytest.fixture
def smtp() -> Iterator[tuple[Inbox, str]]:
    """A real SMTP server (aiosmtpd) on a free port; its inbox and the SMTP URL."""
    with catching_smtp() as caught:
        yield caught
