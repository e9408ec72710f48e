"""The audit trail: events per campaign, some recorded at most once (``once_key``)."""

from __future__ import annotations

from collections.abc import Iterable
from datetime import date, datetime

from sqlalchemy import Table, insert
from sqlalchemy.exc import IntegrityError
from sqlmodel import Session, col, select

from newsroom.store.crud_common import require_aware
from newsroom.store.models import AuditEvent, utcnow


def record_audit(
    session: Session,
    *,
    campaign_id: str,
    actor: str,
    action: str,
    occurrence_date: date | None = None,
    content_hash: str | None = None,
    channel: str | None = None,
    detail: dict | None = None,
    at: datetime | None = None,
    commit: bool = True,
) -> AuditEvent:
    """Record one event; ``commit`` False leaves it in the caller's transaction."""
    at = at or utcnow()
    require_aware(at, "at")
    event = AuditEvent(
        at=at,
        campaign_id=campaign_id,
        occurrence_date=occurrence_date,
        actor=actor,
        action=action,
        content_hash=content_hash,
        channel=channel,
        detail=dict(detail or {}),
    )
    session.add(event)
    if commit:
        session.commit()
    return event


def record_audit_once(session: Session, *, once_key: str, campaign_id: str, actor: str,
                      action: str, occurrence_date: date | None = None,
                      content_hash: str | None = None, channel: str | None = None,
                      detail: dict | None = None, at: datetime | None = None
                      ) -> AuditEvent | None:
    """Record the event unless one with ``once_key`` is recorded already (then None).

    The unique index on ``once_key`` decides, so two processes on one database that
    race record it once: the second insert waits for the first and is then refused.
    Commits.
    """
    at = at or utcnow()
    require_aware(at, "at")
    event = AuditEvent(at=at, campaign_id=campaign_id, occurrence_date=occurrence_date,
                       actor=actor, action=action, content_hash=content_hash,
                       channel=channel, detail=dict(detail or {}), once_key=once_key)
    try:
        with session.begin_nested():
            session.add(event)
    except IntegrityError:
        session.commit()
        return None
    session.commit()
    return event


def audit_once_recorded(session: Session, *, once_key: str) -> bool:
    """True when an event with ``once_key`` is recorded (:func:`record_audit_once`)."""
    query = select(AuditEvent.id).where(AuditEvent.once_key == once_key).limit(1)
    return session.exec(query).first() is not None


def audit_trail(session: Session, *, campaign_id: str) -> list[AuditEvent]:
    """The campaign's audit events, oldest first (ties broken by insertion order)."""
    query = (
        select(AuditEvent)
        .where(AuditEvent.campaign_id == campaign_id)
        .order_by(col(AuditEvent.at), col(AuditEvent.id))
    )
    return list(session.exec(query))


_AUDIT_TABLE: Table = AuditEvent.__table__  # type: ignore[attr-defined]
_AUDIT_COLUMNS = tuple(c.name for c in _AUDIT_TABLE.c if c.name != "id")


def add_audit_events(session: Session, events: Iterable[AuditEvent]) -> None:
    """Insert ``events`` (new, unsaved) in the session's transaction, in one statement;
    does not commit: they are committed with the change they record."""
    rows = []
    for event in events:
        require_aware(event.at, "at")
        rows.append({name: getattr(event, name) for name in _AUDIT_COLUMNS})
    if rows:
        session.execute(insert(_AUDIT_TABLE), rows)
