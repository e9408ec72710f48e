"""Alembic environment for Newsroom.

The URL is the config's ``sqlalchemy.url`` when set, else
``newsroom.settings.get_settings().resolved_database_url()``. A caller may also hand in
an open connection as ``config.attributes["connection"]``.
"""

from __future__ import annotations

from logging.config import fileConfig
from typing import Any, Literal

from alembic import context
from sqlalchemy import event, pool
from sqlalchemy.engine import Connection
from sqlmodel import SQLModel
from sqlmodel.sql.sqltypes import AutoString

from newsroom.errors import StoreError
from newsroom.settings import get_settings
from newsroom.store.db import make_engine, normalize_url
from newsroom.store.models import UTCDateTime  # also registers the tables on the metadata

config = context.config
if config.config_file_name is not None:
    fileConfig(config.config_file_name, disable_existing_loggers=False)

target_metadata = SQLModel.metadata


def database_url() -> str:
    return normalize_url(
        config.get_main_option("sqlalchemy.url") or get_settings().resolved_database_url()
    )


def render_item(type_: str, obj: Any, autogen_context: Any) -> str | Literal[False]:
    """Write Newsroom's column types as plain SQLAlchemy types in generated migrations.

    A migration must not import application code that may change after it was written.
    """
    if type_ == "type":
        if isinstance(obj, UTCDateTime):
            return "sa.DateTime(timezone=True)"
        if isinstance(obj, AutoString):
            return "sa.String()"
    return False


def _configure(connection: Connection) -> None:
    context.configure(
        connection=connection,
        target_metadata=target_metadata,
        render_as_batch=connection.dialect.name == "sqlite",
        render_item=render_item,
        compare_type=True,
        # make_engine() has SQLite emit BEGIN itself, so DDL there is transactional too:
        # a failing migration leaves the schema as it was.
        transactional_ddl=True,
    )


def _run(connection: Connection) -> None:
    _configure(connection)
    with context.begin_transaction():
        context.run_migrations()


def run_migrations_offline() -> None:
    context.configure(
        url=database_url(),
        target_metadata=target_metadata,
        literal_binds=True,
        dialect_opts={"paramstyle": "named"},
        render_as_batch=database_url().startswith("sqlite"),
        render_item=render_item,
    )
    with context.begin_transaction():
        context.run_migrations()


def run_migrations_online() -> None:
    connection = config.attributes.get("connection")
    if connection is not None:
        _run(connection)
        return
    engine = make_engine(database_url(), poolclass=pool.NullPool)
    if engine.dialect.name == "sqlite":
        # Batch migrations copy and drop tables; foreign keys are checked once at the end.
        @event.listens_for(engine, "connect")
        def _foreign_keys_off(dbapi_connection, connection_record):
            dbapi_connection.execute("PRAGMA foreign_keys = OFF")

    try:
        with engine.connect() as connection:
            _run(connection)
            if engine.dialect.name == "sqlite":
                problems = connection.exec_driver_sql("PRAGMA foreign_key_check").fetchall()
                connection.rollback()
                if problems:
                    raise StoreError(f"the migration left broken foreign keys: {problems}")
    finally:
        engine.dispose()


if context.is_offline_mode():
    run_migrations_offline()
else:
    run_migrations_online()
