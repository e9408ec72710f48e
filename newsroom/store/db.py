"""Engines, sessions and schema upgrades.

SQLite is the default (one file in the data directory); PostgreSQL is reached through
psycopg 3. On SQLite every transaction starts with ``BEGIN IMMEDIATE``: writers queue
up behind ``busy_timeout`` instead of failing half-way with "database is locked", and
SAVEPOINTs (used for race-safe inserts) work as documented.
"""

from __future__ import annotations

import logging
import time
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path
from typing import Any

from alembic import command
from alembic.config import Config
from sqlalchemy import event
from sqlalchemy.engine import Engine, make_url
from sqlmodel import Session, create_engine

logger = logging.getLogger("newsroom.store")

MIGRATIONS_DIR = Path(__file__).resolve().parent.parent / "migrations"
SQLITE_BUSY_TIMEOUT_MS = 30_000


def normalize_url(url: str) -> str:
    """Route plain PostgreSQL URLs to psycopg 3 (``postgresql+psycopg://``)."""
    parsed = make_url(url)
    if parsed.drivername in ("postgresql", "postgres"):
        parsed = parsed.set(drivername="postgresql+psycopg")
    return parsed.render_as_string(hide_password=False)


def make_engine(url: str, **engine_kwargs: Any) -> Engine:
    """Create an engine for a SQLite or PostgreSQL URL with Newsroom's connection settings."""
    url = normalize_url(url)
    backend = make_url(url).get_backend_name()
    if backend == "sqlite":
        engine = create_engine(url, **engine_kwargs)
        event.listen(engine, "connect", _sqlite_on_connect)
        event.listen(engine, "begin", _sqlite_on_begin)
        return engine
    engine_kwargs.setdefault("pool_pre_ping", True)
    engine = create_engine(url, **engine_kwargs)
    event.listen(engine, "do_connect", _connect_patiently)
    return engine


# A database server that is away (restarting, failing over, the network cut) is waited for
# this long before an operation fails: new connections are retried with backoff, and the
# pool's pre-ping replaces the connections that broke meanwhile. Publications and
# decisions then go on where they stood instead of failing (tests/reliability/test_restarts).
CONNECT_PATIENCE_S = 60.0


def _connect_patiently(dialect: Any, connection_record: Any, cargs: Any, cparams: Any) -> Any:
    deadline = time.monotonic() + CONNECT_PATIENCE_S
    delay = 0.25
    while True:
        try:
            return dialect.connect(*cargs, **cparams)
        except dialect.loaded_dbapi.OperationalError as exc:
            if time.monotonic() + delay > deadline:
                raise
            logger.warning("the database cannot be reached (%s); trying again in %.1f s",
                           str(exc).splitlines()[0] if str(exc) else type(exc).__name__,
                           delay)
            time.sleep(delay)
            delay = min(delay * 2, 2.0)


def _sqlite_on_connect(dbapi_connection: Any, connection_record: Any) -> None:
    # Let SQLAlchemy emit BEGIN itself (see _sqlite_on_begin): the sqlite3 module's
    # legacy transaction handling breaks SAVEPOINT and SELECT isolation.
    dbapi_connection.isolation_level = None
    cursor = dbapi_connection.cursor()
    try:
        cursor.execute(f"PRAGMA busy_timeout = {SQLITE_BUSY_TIMEOUT_MS}")
        cursor.execute("PRAGMA foreign_keys = ON")
        cursor.execute("PRAGMA journal_mode = WAL")  # stays "memory" for :memory:
        cursor.execute("PRAGMA synchronous = NORMAL")
    finally:
        cursor.close()


def _sqlite_on_begin(connection: Any) -> None:
    connection.exec_driver_sql("BEGIN IMMEDIATE")


def make_read_engine(engine: Engine) -> Engine:
    """An engine for reads only beside ``engine`` (on the same database), for pages that
    are read often and write rarely: on a SQLite file its transactions begin deferred, so
    readers of the WAL database neither queue behind the writer nor behind each other
    (``BEGIN IMMEDIATE`` would take the write lock for every read), and its connections
    are ``query_only``: a write through it fails, never happens. Elsewhere (PostgreSQL,
    an in-memory SQLite) ``engine`` itself."""
    url = engine.url
    if url.get_backend_name() != "sqlite" or url.database in (None, "", ":memory:") or (
            "mode=memory" in url.render_as_string()):
        return engine
    reader = create_engine(url.render_as_string(hide_password=False))
    event.listen(reader, "connect", _sqlite_on_connect_reading)
    event.listen(reader, "begin", _sqlite_on_begin_reading)
    return reader


def _sqlite_on_connect_reading(dbapi_connection: Any, connection_record: Any) -> None:
    _sqlite_on_connect(dbapi_connection, connection_record)
    cursor = dbapi_connection.cursor()
    try:
        cursor.execute("PRAGMA query_only = ON")
    finally:
        cursor.close()


def _sqlite_on_begin_reading(connection: Any) -> None:
    connection.exec_driver_sql("BEGIN")


@contextmanager
def session_scope(engine: Engine) -> Iterator[Session]:
    """A session that commits when the block succeeds and rolls back when it raises."""
    session = Session(engine, expire_on_commit=False)
    try:
        yield session
        session.commit()
    except BaseException:
        session.rollback()
        raise
    finally:
        session.close()


def alembic_config(url: str | None = None) -> Config:
    """An Alembic configuration that needs no alembic.ini (works from an installed package)."""
    config = Config()
    config.set_main_option("script_location", str(MIGRATIONS_DIR))
    if url:
        # ConfigParser interpolates "%": escape it (passwords may contain it).
        config.set_main_option("sqlalchemy.url", normalize_url(url).replace("%", "%%"))
    return config


def upgrade_database(url: str | None = None, *, revision: str = "head") -> None:
    """Run ``alembic upgrade <revision>`` on the database at ``url``.

    Without ``url`` the migrations use ``get_settings().resolved_database_url()``.
    """
    command.upgrade(alembic_config(url), revision)
