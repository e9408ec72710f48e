"""Approval requests (one per person, bundle and step of the chain) and their one
decision; voiding and expiring requests whose question is stale or overdue."""

from __future__ import annotations

import secrets
from collections.abc import Iterable
from datetime import datetime

from sqlalchemy.exc import IntegrityError
from sqlmodel import Session, col, select

from newsroom.errors import StoreError
from newsroom.store.crud_common import check_choice, get_row, insert_or_get, require_aware
from newsroom.store.models import (
    ApprovalDecision,
    ApprovalRequest,
    ApprovalStatus,
    Decision,
    DecisionVia,
    Occurrence,
    utcnow,
)

_DECISION_STATUS = {
    Decision.APPROVE: ApprovalStatus.APPROVED,
    Decision.REJECT: ApprovalStatus.REJECTED,
    Decision.REQUEST_CHANGES: ApprovalStatus.CHANGES_REQUESTED,
}


def _find_request(session: Session, occurrence_id: int, person_id: str, bundle: str,
                  step: int):
    query = select(ApprovalRequest).where(
        ApprovalRequest.occurrence_id == occurrence_id,
        ApprovalRequest.person_id == person_id,
        ApprovalRequest.bundle_hash == bundle,
        ApprovalRequest.step == step,
    )
    return session.exec(query.execution_options(populate_existing=True)).first()


def create_approval_request(
    session: Session,
    *,
    occurrence_id: int,
    person_id: str,
    bundle_hash: str,
    deadline: datetime,
    token_nonce: str | None = None,
    step: int = 0,
) -> ApprovalRequest:
    """Ask ``person_id`` to approve the occurrence's current bundle. Idempotent.

    Asking again for the same bundle returns the existing request (and its nonce).
    Refused when ``bundle_hash`` is not the occurrence's current bundle.
    """
    require_aware(deadline, "deadline")
    occurrence = get_row(session, Occurrence, occurrence_id)
    if occurrence.bundle_hash != bundle_hash:
        raise StoreError(
            f"bundle {bundle_hash[:12]} is not the current content of occurrence "
            f"{occurrence.campaign_id}/{occurrence.occurrence_date.isoformat()}; render again"
        )
    return ensure_approval_request(
        session, occurrence_id=occurrence_id, person_id=person_id, bundle_hash=bundle_hash,
        deadline=deadline, token_nonce=token_nonce, step=step)[0]


def ensure_approval_request(
    session: Session,
    *,
    occurrence_id: int,
    person_id: str,
    bundle_hash: str,
    deadline: datetime,
    token_nonce: str | None = None,
    step: int = 0,
) -> tuple[ApprovalRequest, bool]:
    """Like :func:`create_approval_request`; also says whether the request is new.
    ``step``: the step of the approval chain it asks for (0: the first)."""
    require_aware(deadline, "deadline")
    occurrence = get_row(session, Occurrence, occurrence_id)
    if occurrence.bundle_hash != bundle_hash:
        raise StoreError(
            f"bundle {bundle_hash[:12]} is not the current content of occurrence "
            f"{occurrence.campaign_id}/{occurrence.occurrence_date.isoformat()}; render again"
        )
    existing = _find_request(session, occurrence_id, person_id, bundle_hash, step)
    if existing is not None:
        return existing, False
    request, created = insert_or_get(
        session,
        ApprovalRequest(
            occurrence_id=occurrence_id,
            person_id=person_id,
            bundle_hash=bundle_hash,
            deadline=deadline,
            token_nonce=token_nonce or secrets.token_urlsafe(32),
            step=step,
        ),
        lambda: _find_request(session, occurrence_id, person_id, bundle_hash, step),
    )
    session.commit()
    return request, created


def mark_request_notified(
    session: Session, *, request_id: int, at: datetime | None = None
) -> ApprovalRequest:
    """Note that the approval message for this request went out (first time only)."""
    at = at or utcnow()
    require_aware(at, "at")
    request = get_row(session, ApprovalRequest, request_id, lock=True)
    if request.notified_at is None:
        request.notified_at = at
        session.add(request)
        session.commit()
    return request


def set_reminders_sent(session: Session, *, request_id: int, count: int) -> ApprovalRequest:
    """Raise the request's reminder count to ``count`` (it never goes down)."""
    request = get_row(session, ApprovalRequest, request_id, lock=True)
    if count > request.reminders_sent:
        request.reminders_sent = count
        session.add(request)
        session.commit()
    return request


def get_approval_request(session: Session, *, request_id: int) -> ApprovalRequest | None:
    return session.get(ApprovalRequest, request_id)


def get_request_by_nonce(session: Session, *, token_nonce: str) -> ApprovalRequest | None:
    query = select(ApprovalRequest).where(ApprovalRequest.token_nonce == token_nonce)
    return session.exec(query).first()


def approval_requests(session: Session, *, occurrence_id: int) -> list[ApprovalRequest]:
    query = (
        select(ApprovalRequest)
        .where(ApprovalRequest.occurrence_id == occurrence_id)
        .order_by(col(ApprovalRequest.created_at), col(ApprovalRequest.id))
    )
    return list(session.exec(query))


def record_decision(
    session: Session,
    *,
    request_id: int,
    decision: str,
    decided_by: str,
    via: str,
    bundle_hash: str,
    comment: str = "",
    decided_at: datetime | None = None,
) -> ApprovalDecision:
    """Record the one decision on a request; any second decision raises StoreError.

    ``bundle_hash`` is the content the decider saw: it must be the request's bundle and
    still the occurrence's current one.
    """
    decision = check_choice(decision, Decision, "decision")
    via = check_choice(via, DecisionVia, "via")
    decided_at = decided_at or utcnow()
    require_aware(decided_at, "decided_at")
    # Lock order everywhere: occurrence, then its requests.
    occurrence_id = get_row(session, ApprovalRequest, request_id).occurrence_id
    occurrence = get_row(session, Occurrence, occurrence_id, lock=True)
    request = get_row(session, ApprovalRequest, request_id, lock=True)
    if request.status != ApprovalStatus.PENDING:
        raise StoreError(
            f"approval request {request_id} is {request.status}, not pending: "
            "a request can be decided once"
        )
    if bundle_hash != request.bundle_hash:
        raise StoreError(
            f"the decision is for bundle {bundle_hash[:12]} but request {request_id} "
            f"asks about bundle {request.bundle_hash[:12]}"
        )
    if occurrence.bundle_hash != request.bundle_hash:
        raise StoreError(
            f"the content changed after approval request {request_id} was sent; "
            "the request is stale and a new one is needed"
        )
    row = ApprovalDecision(
        request_id=request_id,
        decision=decision,
        comment=comment,
        decided_by=decided_by,
        via=via,
        bundle_hash=bundle_hash,
        decided_at=decided_at,
    )
    try:
        with session.begin_nested():
            session.add(row)
    except IntegrityError:
        raise StoreError(
            f"approval request {request_id} has been decided already: a request can be decided once"
        ) from None
    request.status = _DECISION_STATUS[Decision(decision)].value
    request.decided_at = decided_at
    session.add(request)
    session.commit()
    return row


def get_decision(session: Session, *, request_id: int) -> ApprovalDecision | None:
    query = select(ApprovalDecision).where(ApprovalDecision.request_id == request_id)
    return session.exec(query).first()


def _void(session: Session, requests: Iterable[ApprovalRequest], status: str):
    changed = []
    for request in requests:
        request.status = status
        session.add(request)
        changed.append(request)
    if changed:
        session.commit()
    return changed


def void_requests_for_bundle(
    session: Session, *, occurrence_id: int, bundle_hash: str
) -> list[ApprovalRequest]:
    """Void the pending requests that ask about ``bundle_hash`` (its content changed)."""
    query = select(ApprovalRequest).where(
        ApprovalRequest.occurrence_id == occurrence_id,
        ApprovalRequest.bundle_hash == bundle_hash,
        ApprovalRequest.status == ApprovalStatus.PENDING.value,
    )
    return _void(session, session.exec(query).all(), ApprovalStatus.VOID.value)


def void_stale_requests(session: Session, *, occurrence_id: int) -> list[ApprovalRequest]:
    """Void the pending requests whose bundle is not the occurrence's current one."""
    occurrence = get_row(session, Occurrence, occurrence_id, lock=True)
    query = select(ApprovalRequest).where(
        ApprovalRequest.occurrence_id == occurrence_id,
        ApprovalRequest.status == ApprovalStatus.PENDING.value,
    )
    stale = [r for r in session.exec(query) if r.bundle_hash != occurrence.bundle_hash]
    return _void(session, stale, ApprovalStatus.VOID.value)


def expire_overdue_requests(
    session: Session, *, now: datetime | None = None, occurrence_id: int | None = None,
    step: int | None = None,
) -> list[ApprovalRequest]:
    """Mark pending requests whose deadline has passed as expired (of one occurrence,
    of one step of its approval chain)."""
    now = now or utcnow()
    require_aware(now, "now")
    query = select(ApprovalRequest).where(
        ApprovalRequest.status == ApprovalStatus.PENDING.value,
        col(ApprovalRequest.deadline) <= now,
    )
    if occurrence_id is not None:
        query = query.where(ApprovalRequest.occurrence_id == occurrence_id)
    if step is not None:
        query = query.where(ApprovalRequest.step == step)
    return _void(session, session.exec(query).all(), ApprovalStatus.EXPIRED.value)


def later_step_asked(session: Session, request: ApprovalRequest) -> bool:
    """True when a later step of the approval chain was asked about the request's bundle:
    the request's step is done, and a decision on it no longer counts."""
    query = select(ApprovalRequest.id).where(
        ApprovalRequest.occurrence_id == request.occurrence_id,
        ApprovalRequest.bundle_hash == request.bundle_hash,
        col(ApprovalRequest.step) > request.step,
    ).limit(1)
    return session.exec(query).first() is not None
