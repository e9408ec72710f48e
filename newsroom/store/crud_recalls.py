"""Recalls: one row per occurrence and channel taken back, and the compare-and-set steps
that make each withdrawal happen once (requested → withdrawing under a claim token →
gone | manual | corrected | failed | unknown; or cancelled where nothing was published).

A channel that was never published is closed by reserving its publication as "skipped":
the UNIQUE (post, channel) of the publication table then refuses every later reservation,
in whichever process, so nothing of a recalled occurrence goes out afterwards."""

from __future__ import annotations

import secrets
from collections.abc import Iterable
from datetime import datetime, timedelta

from sqlalchemy import Table, update
from sqlalchemy.exc import IntegrityError
from sqlmodel import Session, col, select

from newsroom.store.crud_common import get_row, insert_or_get, require_aware
from newsroom.store.models import (
    ApprovalRequest,
    ApprovalStatus,
    Publication,
    PublicationStatus,
    Recall,
    RecallStatus,
    utcnow,
)

_RECALLS: Table = Recall.__table__  # type: ignore[attr-defined]
_PUBLICATIONS: Table = Publication.__table__  # type: ignore[attr-defined]
# A recall in one of these states is done: nothing more is sent for it.
DONE_RECALL = frozenset({RecallStatus.CANCELLED, RecallStatus.GONE, RecallStatus.MANUAL,
                         RecallStatus.CORRECTED, RecallStatus.UNKNOWN})


def _find(session: Session, occurrence_id: int, channel: str) -> Recall | None:
    query = select(Recall).where(Recall.occurrence_id == occurrence_id,
                                 Recall.channel == channel)
    return session.exec(query.execution_options(populate_existing=True)).first()


def ensure_recall(session: Session, *, occurrence_id: int, channel: str, requested_by: str,
                  reason: str, at: datetime | None = None, commit: bool = True
                  ) -> tuple[Recall, bool]:
    """The recall of ``channel`` of the occurrence; ``created`` when this call recorded
    it (a second recall of the same channel finds the first: who and why stay the
    first's). Commits unless ``commit`` is False."""
    at = at or utcnow()
    require_aware(at, "at")
    existing = _find(session, occurrence_id, channel)
    if existing is not None:
        return existing, False
    recall, created = insert_or_get(
        session, Recall(occurrence_id=occurrence_id, channel=channel,
                        requested_by=requested_by, reason=reason, requested_at=at),
        lambda: _find(session, occurrence_id, channel))
    if commit:
        session.commit()
    return recall, created


def recalls_of(session: Session, *, occurrence_id: int) -> list[Recall]:
    query = (select(Recall).where(Recall.occurrence_id == occurrence_id)
             .order_by(col(Recall.id)))
    return list(session.exec(query.execution_options(populate_existing=True)))


def unfinished_recalls(session: Session) -> list[Recall]:
    """Recalls not done yet (waiting for a publication's outcome, failed, or claimed):
    what the housekeeping sweep carries on."""
    done = [s.value for s in DONE_RECALL]
    query = select(Recall).where(col(Recall.status).not_in(done)).order_by(col(Recall.id))
    return list(session.exec(query.execution_options(populate_existing=True)))


def claim_withdrawal(session: Session, *, recall_id: int, stale_after: timedelta,
                     now: datetime | None = None, commit: bool = True
                     ) -> tuple[Recall | None, bool]:
    """Claim the withdrawal (compare-and-set): requested or failed → withdrawing under a
    new claim token; a claim older than ``stale_after`` (its process died) is taken over.
    ``(recall, taken_over)``; ``(None, False)`` when another process holds a fresh claim
    or the recall is done. Commits unless ``commit`` is False (then the caller commits
    before any network is called)."""
    now = now or utcnow()
    token = secrets.token_hex(16)
    free = [RecallStatus.REQUESTED.value, RecallStatus.FAILED.value]
    row = session.execute(
        update(_RECALLS).where(_RECALLS.c.id == recall_id, _RECALLS.c.status.in_(free))
        .values(status=RecallStatus.WITHDRAWING.value, claim_token=token, claimed_at=now,
                attempts=_RECALLS.c.attempts + 1).returning(_RECALLS.c.id)).first()
    taken_over = False
    if row is None:
        row = session.execute(
            update(_RECALLS).where(_RECALLS.c.id == recall_id,
                                   _RECALLS.c.status == RecallStatus.WITHDRAWING.value,
                                   _RECALLS.c.claimed_at < now - stale_after)
            .values(claim_token=token, claimed_at=now, attempts=_RECALLS.c.attempts + 1)
            .returning(_RECALLS.c.id)).first()
        taken_over = row is not None
    if commit:
        session.commit()
    if row is None:
        return None, False
    return session.get(Recall, recall_id, populate_existing=True), taken_over


def settle_recall(session: Session, *, recall_id: int, status: RecallStatus,
                  claim_token: str | None = None, detail: str | None = None,
                  publication_id: int | None = None, at: datetime | None = None,
                  commit: bool = True) -> Recall | None:
    """The recall's outcome (compare-and-set): with ``claim_token``, only while that claim
    holds; never once done. None when nothing changed. Commits unless ``commit`` is
    False."""
    at = at or utcnow()
    query = update(_RECALLS).where(_RECALLS.c.id == recall_id,
                                   _RECALLS.c.status.not_in([s.value for s in DONE_RECALL]))
    if claim_token is not None:
        query = query.where(_RECALLS.c.claim_token == claim_token)
    values: dict[str, object] = {"status": status.value, "detail": detail}
    if status in DONE_RECALL:
        values["done_at"] = at
    if status != RecallStatus.WITHDRAWING:
        values["claim_token"] = None
    if publication_id is not None:
        values["publication_id"] = publication_id
    row = session.execute(query.values(**values).returning(_RECALLS.c.id)).first()
    if commit:
        session.commit()
    return session.get(Recall, recall_id, populate_existing=True) if row else None


def reserve_skipped_publication(session: Session, *, post_id: int, channel: str,
                                idempotency_key: str, reason: str) -> Publication | None:
    """Reserve the post's publication on ``channel`` as "skipped" (a recall closes a
    channel that was never published); None when it is reserved already (then its own
    state says what became of it). Commits."""
    try:
        with session.begin_nested():
            publication = Publication(post_id=post_id, channel=channel,
                                      idempotency_key=idempotency_key,
                                      status=PublicationStatus.SKIPPED.value,
                                      last_error=reason)
            session.add(publication)
    except IntegrityError:
        session.commit()
        return None
    session.commit()
    return publication


def skip_reserved(session: Session, *, publication_id: int, reason: str) -> bool:
    """A reserved (or failed) publication skipped before any claim sends it; False when
    a claim got it first. Commits."""
    row = session.execute(
        update(_PUBLICATIONS).where(
            _PUBLICATIONS.c.id == publication_id,
            _PUBLICATIONS.c.status.in_([PublicationStatus.RESERVED.value,
                                        PublicationStatus.FAILED.value]))
        .values(status=PublicationStatus.SKIPPED.value, last_error=reason, claim_token=None)
        .returning(_PUBLICATIONS.c.id)).first()
    session.commit()
    return row is not None


def void_pending_requests(session: Session, *, occurrence_id: int) -> list[ApprovalRequest]:
    """Void every pending approval request of the occurrence (a recall closes its gate:
    the open links answer that the posts changed no more). Commits."""
    query = select(ApprovalRequest).where(ApprovalRequest.occurrence_id == occurrence_id,
                                          ApprovalRequest.status == ApprovalStatus.PENDING.value)
    voided: list[ApprovalRequest] = []
    for request in session.exec(query):
        request.status = ApprovalStatus.VOID.value
        session.add(request)
        voided.append(request)
    session.commit()
    return voided


def recall_row(session: Session, recall_id: int) -> Recall:
    return get_row(session, Recall, recall_id)


def recalls_by_id(session: Session, ids: Iterable[int]) -> list[Recall]:
    ids = list(ids)
    if not ids:
        return []
    query = select(Recall).where(col(Recall.id).in_(ids)).order_by(col(Recall.id))
    return list(session.exec(query.execution_options(populate_existing=True)))

