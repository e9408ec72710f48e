"""The gate in the store: reading its requests and decisions, settling it by the rule,
opening it on the occurrence's current bundle, and its audit events.

A changed bundle is a new question: :func:`open_gate` voids the pending requests of the
old one and asks again. Once settled, an outcome never changes.
"""

from __future__ import annotations

from collections.abc import Iterable
from datetime import datetime
from typing import Any

from sqlalchemy.engine import Engine
from sqlmodel import Session, col, select

from newsroom import store
from newsroom.catalog.approvers import required_approvals, resolve_approvers
from newsroom.catalog.catalog import Catalog
from newsroom.posts import RenderedPost
from newsroom.store import ApprovalDecision, ApprovalRequest, ApprovalStatus, Occurrence, stored_id

from .errors import ApprovalError
from .policy import ACTOR, ADMIN_PREFIX, campaign_of, gate_deadline, utc_now
from .rules import Tally, outcome_after_deadline, rule_outcome
from .status import FINAL_OUTCOMES, GateDecision, GateOutcome, GateStatus

# --- reading the gate --------------------------------------------------------------------


def occurrence_of(session: Session, occurrence_id: int) -> Occurrence:
    """The occurrence as stored now, or an :class:`ApprovalError`."""
    occurrence = session.get(Occurrence, occurrence_id, populate_existing=True)
    if occurrence is None:
        raise ApprovalError(f"no occurrence with id {occurrence_id}")
    return occurrence


def gate_requests(session: Session, occurrence: Occurrence,
                  requests: Iterable[ApprovalRequest] | None = None) -> list[ApprovalRequest]:
    """The requests about the gate's bundle, people first, admins last (not void).

    ``requests``: all of the occurrence's requests, read already in this session (then
    they are filtered, not read again)."""
    if occurrence.gate_bundle_hash is None:
        return []
    if requests is not None:
        return sorted((r for r in requests if r.occurrence_id == occurrence.id
                       and r.bundle_hash == occurrence.gate_bundle_hash
                       and r.status != ApprovalStatus.VOID.value), key=stored_id)
    query = (
        select(ApprovalRequest)
        .where(ApprovalRequest.occurrence_id == occurrence.id,
               ApprovalRequest.bundle_hash == occurrence.gate_bundle_hash,
               ApprovalRequest.status != ApprovalStatus.VOID.value)
        .order_by(col(ApprovalRequest.id))
    )
    return list(session.exec(query.execution_options(populate_existing=True)))


def _decisions(session: Session,
               requests: Iterable[ApprovalRequest]) -> dict[int, ApprovalDecision]:
    ids = [r.id for r in requests]
    if not ids:
        return {}
    query = select(ApprovalDecision).where(col(ApprovalDecision.request_id).in_(ids))
    return {d.request_id: d for d in session.exec(query)}


def read_tally(session: Session, occurrence: Occurrence,
               requests: Iterable[ApprovalRequest] | None = None) -> Tally:
    """The gate's requests and decisions as the rule reads them (``requests``: see
    :func:`gate_requests`)."""
    requests = gate_requests(session, occurrence, requests)
    people = [r for r in requests if not r.person_id.startswith(ADMIN_PREFIX)]
    decisions = _decisions(session, requests)
    admin = [decisions[r.id] for r in requests
             if r.person_id.startswith(ADMIN_PREFIX) and r.id in decisions]
    return Tally(people, decisions, admin[-1] if admin else None)


def gate_posts(session: Session, occurrence: Occurrence) -> list[RenderedPost]:
    """The occurrence's current posts (what the gate asks about)."""
    rows = store.current_posts(session, occurrence_id=stored_id(occurrence))
    return [row.to_rendered() for row in rows]


def deadline_of(catalog: Catalog, occurrence: Occurrence, tally: Tally) -> datetime:
    """The deadline the requests were given; the policy's when nobody is asked yet."""
    if tally.asked:
        return tally.asked[0].deadline
    return gate_deadline(catalog, occurrence.campaign_id, occurrence.first_publish_at)


def gate_status(catalog: Catalog, occurrence: Occurrence, tally: Tally, outcome: GateOutcome,
                reason: str) -> GateStatus:
    """The :class:`GateStatus` of ``tally`` with the given outcome."""
    policy = campaign_of(catalog, occurrence.campaign_id).approval
    admin = tally.admin.decided_by.removeprefix(ADMIN_PREFIX) if tally.admin else None
    return GateStatus(
        occurrence_id=stored_id(occurrence),
        campaign_id=occurrence.campaign_id,
        occurrence_date=occurrence.occurrence_date,
        bundle_hash=occurrence.gate_bundle_hash or occurrence.bundle_hash or "",
        mode=policy.mode.value,
        needed=0 if policy.pre_approved else required_approvals(policy, len(tally.asked)),
        deadline=deadline_of(catalog, occurrence, tally),
        asked=tuple(r.person_id for r in tally.asked),
        approved=tally.ids(ApprovalStatus.APPROVED),
        rejected=tally.ids(ApprovalStatus.REJECTED),
        changes_requested=tally.ids(ApprovalStatus.CHANGES_REQUESTED),
        pending=tally.ids(ApprovalStatus.PENDING),
        outcome=outcome,
        reason=reason,
        decided_by_admin=admin,
        decisions=tuple(
            GateDecision(person_id=d.decided_by.removeprefix(ADMIN_PREFIX),
                         decision=d.decision, comment=d.comment, via=d.via,
                         decided_at=d.decided_at,
                         by_admin=d.decided_by.startswith(ADMIN_PREFIX))
            for d in sorted(tally.decisions.values(), key=lambda d: (d.decided_at, d.id))),
    )


def audit(session: Session, occurrence: Occurrence, *, action: str, actor: str = ACTOR,
          content_hash: str | None = None, channel: str | None = None,
          detail: dict[str, Any] | None = None, at: datetime | None = None) -> None:
    """One event of the occurrence's gate in the audit trail."""
    store.record_audit(session, campaign_id=occurrence.campaign_id,
                       occurrence_date=occurrence.occurrence_date, actor=actor, action=action,
                       content_hash=content_hash, channel=channel, detail=detail, at=at)


# --- settling the gate -------------------------------------------------------------------


def evaluate(session: Session, catalog: Catalog, occurrence_id: int,
             now: datetime) -> tuple[GateStatus, bool]:
    """The gate's status; ``changed`` when this call settled or escalated it."""
    occurrence = occurrence_of(session, occurrence_id)
    policy = campaign_of(catalog, occurrence.campaign_id).approval
    tally = read_tally(session, occurrence)
    stored = GateOutcome(occurrence.gate_outcome) if occurrence.gate_outcome else None
    if stored in FINAL_OUTCOMES:
        outcome, reason = rule_outcome(policy, tally)
        if tally.admin is not None:
            reason = (f"admin {tally.admin.decided_by.removeprefix(ADMIN_PREFIX)} decided "
                      f"{tally.admin.decision} via {tally.admin.via}")
        elif outcome != stored:
            reason = f"settled as {stored.value} at {occurrence.gate_settled_at}"
        return gate_status(catalog, occurrence, tally, stored, reason), False
    if stored == GateOutcome.ESCALATED:
        return gate_status(catalog, occurrence, tally, stored,
                           f"deadline passed, escalated at {occurrence.escalated_at}; waiting "
                           "for an admin decision"), False
    if occurrence.gate_bundle_hash is None:
        return gate_status(catalog, occurrence, tally, GateOutcome.PENDING,
                           "the gate has not been opened"), False
    if occurrence.bundle_hash != occurrence.gate_bundle_hash:
        return gate_status(catalog, occurrence, tally, GateOutcome.PENDING,
                           "the posts changed since approval was requested; open the gate "
                           "again"), False

    outcome, reason = rule_outcome(policy, tally)
    deadline = deadline_of(catalog, occurrence, tally)
    if outcome == GateOutcome.PENDING and now >= deadline:
        expired = store.expire_overdue_requests(session, now=now, occurrence_id=occurrence.id)
        for request in expired:
            audit(session, occurrence, action="approval.expired",
                  content_hash=request.bundle_hash, at=now,
                  detail={"person": request.person_id, "request_id": request.id})
        tally = read_tally(session, occurrence)
        outcome, reason = outcome_after_deadline(policy, tally)
    if outcome == GateOutcome.PENDING:
        return gate_status(catalog, occurrence, tally, outcome, reason), False
    occurrence, changed = store.settle_gate(
        session, occurrence_id=stored_id(occurrence), bundle_hash=occurrence.gate_bundle_hash,
        outcome=outcome.value, at=now)
    status = gate_status(catalog, occurrence, tally, outcome, reason)
    if changed:
        action = "approval.escalated" if outcome == GateOutcome.ESCALATED else "approval.settled"
        audit(session, occurrence, action=action, content_hash=status.bundle_hash, at=now,
              detail={"outcome": outcome.value, "reason": reason,
                      "approved": list(status.approved), "rejected": list(status.rejected),
                      "changes_requested": list(status.changes_requested),
                      "asked": list(status.asked)})
    elif occurrence.gate_outcome != outcome.value:
        # Another process settled it first: report what is stored.
        return evaluate(session, catalog, occurrence_id, now)
    return status, changed


def evaluate_gate(engine: Engine, catalog: Catalog, *, occurrence_id: int,
                  now: datetime | None = None) -> GateStatus:
    """What the gate's requests and decisions amount to now (settles it when they do)."""
    with store.session_scope(engine) as session:
        return evaluate(session, catalog, occurrence_id, utc_now(now))[0]


# --- opening the gate --------------------------------------------------------------------


def open_gate(engine: Engine, catalog: Catalog, *, occurrence_id: int,
              now: datetime | None = None) -> GateStatus:
    """Ask every approver about the occurrence's current bundle. Idempotent; sends nothing."""
    now = utc_now(now)
    with store.session_scope(engine) as session:
        occurrence = occurrence_of(session, occurrence_id)
        if occurrence.bundle_hash is None:
            raise ApprovalError(
                f"occurrence {occurrence.campaign_id}/{occurrence.occurrence_date} has no "
                "rendered posts; render and store them before opening the gate")
        campaign = campaign_of(catalog, occurrence.campaign_id)
        policy = campaign.approval
        bundle = occurrence.bundle_hash
        store.set_gate_bundle(session, occurrence_id=occurrence_id, bundle_hash=bundle)
        for request in store.void_stale_requests(session, occurrence_id=occurrence_id):
            audit(session, occurrence, action="approval.voided",
                  content_hash=request.bundle_hash, at=now,
                  detail={"person": request.person_id, "request_id": request.id,
                          "new_bundle": bundle})
        occurrence = occurrence_of(session, occurrence_id)
        if occurrence.gate_outcome is None and not policy.pre_approved:
            deadline = gate_deadline(catalog, occurrence.campaign_id, occurrence.first_publish_at)
            posts = {p.channel: p.content_hash
                     for p in store.current_posts(session, occurrence_id=occurrence_id)}
            for approver in resolve_approvers(policy, catalog.index, occurrence.occurrence_date):
                request, created = store.ensure_approval_request(
                    session, occurrence_id=occurrence_id, person_id=approver.person.id,
                    bundle_hash=bundle, deadline=deadline)
                if created:
                    audit(session, occurrence, action="approval.requested",
                          content_hash=bundle, at=now, detail={
                              "person": approver.person.id, "request_id": request.id,
                              "on_behalf_of": (approver.on_behalf_of.id
                                               if approver.on_behalf_of else None),
                              "deadline": deadline.isoformat(), "posts": posts})
        return evaluate(session, catalog, occurrence_id, now)[0]
