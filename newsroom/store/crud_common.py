"""What every CRUD module of the store shares: checks of arguments, loading a row by its
key, and the race-safe insert.

The CRUD modules (``crud_*.py``) follow one convention: every function takes the
:class:`~sqlmodel.Session` first and everything else as keyword arguments. Functions that
write commit before they return: each is one durable step (a reservation must be on disk
before the network call it guards). Inserts that can race run in a SAVEPOINT and rely on the
database's UNIQUE constraints, never on a prior SELECT (:func:`insert_or_get`).
"""

from __future__ import annotations

from collections.abc import Callable
from datetime import datetime
from enum import Enum
from typing import Any, TypeVar

from sqlalchemy.exc import IntegrityError
from sqlmodel import Session, SQLModel

from newsroom.errors import StoreError

T = TypeVar("T", bound=SQLModel)


def require_aware(value: datetime, name: str) -> None:
    if value.tzinfo is None or value.utcoffset() is None:
        raise StoreError(f"{name} must be timezone-aware, got naive {value.isoformat()}")


def check_choice(value: str, allowed: type[Enum], name: str) -> str:
    try:
        return allowed(value).value
    except ValueError:
        choices = ", ".join(v.value for v in allowed)
        raise StoreError(f"{name} {value!r} is not one of: {choices}") from None


def get_row(session: Session, model: type[T], ident: Any, *, lock: bool = False) -> T:
    """Load a row by primary key; ``lock`` re-reads it with SELECT ... FOR UPDATE.

    (SQLite has no row locks; there every transaction holds the write lock anyway.)
    """
    if lock:
        row = session.get(model, ident, with_for_update=True, populate_existing=True)
    else:
        row = session.get(model, ident)
    if row is None:
        raise StoreError(f"no {model.__name__} with id {ident!r}")
    return row


def insert_or_get(session: Session, row: T, find: Callable[[], T | None]) -> tuple[T, bool]:
    """Insert ``row`` in a SAVEPOINT; when a UNIQUE constraint says it exists, return that.

    Returns ``(row, created)``. Does not commit.
    """
    try:
        with session.begin_nested():
            session.add(row)
    except IntegrityError:
        existing = find()
        if existing is None:
            raise
        return existing, False
    return row, True
