"""PostgreSQL for the tests: the server at 127.0.0.1:5432 (trust auth, user ``postgres``
or ``root``; ``NEWSROOM_TEST_POSTGRES_URL`` names another), fresh databases that are
dropped afterwards, and empty schemas. An unreachable server fails the tests that need
it, it does not skip them: deselect those with ``-m "not postgres"``.
"""

from __future__ import annotations

import os
import secrets
from collections.abc import Iterator
from contextlib import contextmanager

import pytest
from sqlalchemy import create_engine, text
from sqlalchemy.engine import make_url
from sqlalchemy.exc import OperationalError
from sqlalchemy.pool import NullPool

POSTGRES_CANDIDATES = (
    "postgresql+psycopg://postgres@127.0.0.1:5432/test",
    "postgresql+psycopg://root@127.0.0.1:5432/test",
)


def admin_url() -> str:
    """A URL that reaches the test server (fails the test with what was tried)."""
    override = os.environ.get("NEWSROOM_TEST_POSTGRES_URL")
    failures = []
    for url in (override,) if override else POSTGRES_CANDIDATES:
        engine = create_engine(url, poolclass=NullPool)
        try:
            with engine.connect() as connection:
                connection.execute(text("SELECT 1"))
            return url
        except OperationalError as exc:
            failures.append(f"  {make_url(url).render_as_string()}: {exc.orig}")
        finally:
            engine.dispose()
    pytest.fail("PostgreSQL is not reachable; tried:\n" + "\n".join(failures)
                + "\nStart it on 127.0.0.1:5432 (trust auth for postgres or root), point "
                "NEWSROOM_TEST_POSTGRES_URL at a server, or deselect with -m 'not postgres'.",
                pytrace=False)


@contextmanager
def fresh_database(prefix: str, *, driver: str | None = None) -> Iterator[str]:
    """Create a database named ``<prefix>_<random>``, yield its URL, drop it afterwards."""
    base = admin_url()
    admin = create_engine(base, isolation_level="AUTOCOMMIT", poolclass=NullPool)
    name = f"{prefix}_{secrets.token_hex(6)}"
    with admin.connect() as connection:
        connection.exec_driver_sql(f'CREATE DATABASE "{name}"')
    url = make_url(base).set(database=name)
    if driver:
        url = url.set(drivername=driver)
    try:
        yield url.render_as_string(hide_password=False)
    finally:
        with admin.connect() as connection:
            connection.exec_driver_sql(f'DROP DATABASE IF EXISTS "{name}" WITH (FORCE)')
        admin.dispose()


def reset_schema(url: str) -> str:
    """Empty the database at ``url`` (a new ``public`` schema); returns ``url``."""
    engine = create_engine(url, isolation_level="AUTOCOMMIT", poolclass=NullPool)
    try:
        with engine.connect() as connection:
            connection.exec_driver_sql("DROP SCHEMA IF EXISTS public CASCADE")
            connection.exec_driver_sql("CREATE SCHEMA public")
    finally:
        engine.dispose()
    return url
