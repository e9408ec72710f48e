"""The store as publishing uses it: one short transaction at a time.

Publishing runs in an event loop. Each database step runs in its own session in a worker
thread (:func:`run_in_session`), so no transaction spans an await: on SQLite every
transaction holds the write lock. :func:`publication_events` is one publication's part
of its campaign's audit trail.
"""

from __future__ import annotations

import asyncio
from collections.abc import Callable
from typing import TypeVar

from sqlalchemy.engine import Engine
from sqlmodel import Session

from newsroom import store

__all__ = ["publication_events", "run_in_session"]

T = TypeVar("T")


async def run_in_session(engine: Engine, work: Callable[[Session], T]) -> T:
    """Run ``work`` in its own session in a worker thread (no transaction spans an await:
    on SQLite every transaction holds the write lock)."""

    def run() -> T:
        with store.session_scope(engine) as session:
            return work(session)

    return await asyncio.to_thread(run)


def publication_events(session: Session, campaign_id: str, publication_id: int):
    return [e for e in store.audit_trail(session, campaign_id=campaign_id)
            if e.detail.get("publication_id") == publication_id]
