"""The gate in the store: reading its requests and decisions, walking its approval chain
step by step, settling it by the rule, opening it on the occurrence's current bundle, and
its audit events.

A changed bundle is a new question: :func:`open_gate` voids the pending requests of the
old one and asks again. Once settled, an outcome never changes.
"""

from __future__ import annotations

from collections.abc import Iterable
from dataclasses import dataclass, replace
from datetime import datetime
from typing import Any

from sqlalchemy.engine import Engine
from sqlmodel import Session, col, select

from newsroom import store
from newsroom.catalog.approvers import required_approvals, resolve_chain
from newsroom.catalog.catalog import Catalog
from newsroom.posts import RenderedPost
from newsroom.store import ApprovalDecision, ApprovalRequest, ApprovalStatus, Occurrence, stored_id

from .errors import ApprovalError
from .policy import ACTOR, ADMIN_PREFIX, campaign_of, step_deadline, step_name, utc_now
from .rules import Tally, outcome_after_deadline, rule_outcome
from .status import FINAL_OUTCOMES, GateDecision, GateOutcome, GateStatus, StepState, StepStatus

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


def read_chain(session: Session, occurrence: Occurrence, size: int,
               requests: Iterable[ApprovalRequest] | None = None) -> list[Tally]:
    """Each step's requests and decisions as the rule reads them, for the ``size`` steps
    of the chain (``requests``: see :func:`gate_requests`)."""
    requests = gate_requests(session, occurrence, requests)
    decisions = _decisions(session, requests)
    tallies = []
    for number in range(size):
        mine = [r for r in requests if r.step == number]
        people = [r for r in mine if not r.person_id.startswith(ADMIN_PREFIX)]
        admin = [decisions[r.id] for r in mine
                 if r.person_id.startswith(ADMIN_PREFIX) and r.id in decisions]
        tallies.append(Tally(people, {r.id: decisions[r.id] for r in mine if r.id in decisions},
                             admin[-1] if admin else None))
    return tallies


def gate_posts(session: Session, occurrence: Occurrence) -> list[RenderedPost]:
    """The occurrence's current posts (what the gate asks about)."""
    rows = store.current_posts(session, occurrence_id=stored_id(occurrence))
    return [row.to_rendered() for row in rows]


@dataclass
class Walk:
    """Where the approval chain stands: each step's tally and deadline, the step the gate
    stands at, and what that step's decisions amount to."""

    tallies: list[Tally]
    deadlines: list[datetime]
    step: int
    outcome: GateOutcome
    reason: str


def walk_chain(session: Session, catalog: Catalog, occurrence: Occurrence, now: datetime, *,
               write: bool, requests: list[ApprovalRequest] | None = None) -> Walk:
    """Walk the chain from its first step to the first that is not approved.

    ``write``: the gate is open on the current bundle and this call may settle it: a step
    whose predecessor is approved is asked (its requests created), a passed deadline
    expires the step's pending requests. Without it nothing is written: a passed
    deadline is read as applied, a step not asked yet is the one the gate stands at.
    """
    policy = campaign_of(catalog, occurrence.campaign_id).approval
    chain = policy.chain
    tallies = read_chain(session, occurrence, len(chain), requests)

    def deadline(number: int) -> datetime:
        asked = tallies[number].asked
        return asked[0].deadline if asked else step_deadline(
            catalog, occurrence.campaign_id, number, occurrence.first_publish_at)

    deadlines = [deadline(n) for n in range(len(chain))]
    if policy.pre_approved:
        return Walk(tallies, deadlines, 0, GateOutcome.APPROVED, "the campaign is pre-approved")
    number = 0
    opened: set[int] = set()
    while True:
        step, tally = chain[number], tallies[number]
        prefix = (f"step {number + 1} of {len(chain)} "
                  f"({step_name(catalog, step, number)}): " if len(chain) > 1 else "")
        if not tally.asked and tally.admin is None:
            if write and number > 0 and number not in opened:
                opened.add(number)  # once: a step that resolves to nobody stays pending
                open_step(session, catalog, occurrence, number, now)
                tallies = read_chain(session, occurrence, len(chain))
                deadlines[number] = deadline(number)
                continue
            return Walk(tallies, deadlines, number, GateOutcome.PENDING,
                        prefix + "nobody has been asked yet")
        outcome, reason = rule_outcome(step, tally)
        if outcome == GateOutcome.PENDING and now >= deadlines[number]:
            if write:
                expired = store.expire_overdue_requests(
                    session, now=now, occurrence_id=occurrence.id, step=number)
                for request in expired:
                    audit(session, occurrence, action="approval.expired",
                          content_hash=request.bundle_hash, at=now,
                          detail={"person": request.person_id, "request_id": request.id,
                                  "step": number})
                tallies = read_chain(session, occurrence, len(chain))
            else:
                tallies[number] = replace(tally, pending_expired=True)
            outcome, reason = outcome_after_deadline(step, tallies[number])
        if outcome == GateOutcome.APPROVED and number + 1 < len(chain):
            if write:
                store.record_audit_once(
                    session, once_key=(f"step-approved:{occurrence.id}:"
                                       f"{occurrence.gate_bundle_hash}:{number}"),
                    campaign_id=occurrence.campaign_id,
                    occurrence_date=occurrence.occurrence_date, actor=ACTOR,
                    action="approval.step_approved", content_hash=occurrence.gate_bundle_hash,
                    at=now, detail={"step": number, "name": step_name(catalog, step, number),
                                    "reason": reason,
                                    "approved": list(tallies[number].ids(
                                        ApprovalStatus.APPROVED))})
            number += 1
            continue
        return Walk(tallies, deadlines, number, outcome, prefix + reason)


def _step_states(outcome: GateOutcome, number: int, current: int) -> StepState:
    if number < current or (number == current and outcome == GateOutcome.APPROVED):
        return StepState.DONE
    if number > current:
        return StepState.TO_COME
    if outcome in (GateOutcome.PENDING, GateOutcome.ESCALATED):
        return StepState.CURRENT
    return StepState.CLOSED


def gate_status(catalog: Catalog, occurrence: Occurrence, walk: Walk, outcome: GateOutcome,
                reason: str) -> GateStatus:
    """The :class:`GateStatus` of ``walk`` with the given outcome."""
    policy = campaign_of(catalog, occurrence.campaign_id).approval
    chain = policy.chain
    tally = walk.tallies[walk.step]
    try:
        to_ask = resolve_chain(policy, catalog.index, occurrence.occurrence_date)
    except LookupError:
        to_ask = [[] for _ in chain]
    steps = []
    for number, (step, step_tally) in enumerate(zip(chain, walk.tallies, strict=True)):
        state = _step_states(outcome, number, walk.step)
        asked = [r.person_id for r in step_tally.asked]
        steps.append(StepStatus(
            number=number, name=step_name(catalog, step, number), mode=step.mode.value,
            needed=required_approvals(step, len(asked) or len(to_ask[number])),
            deadline=walk.deadlines[number],
            people=tuple(asked or (a.person.id for a in to_ask[number])),
            approved=step_tally.ids(ApprovalStatus.APPROVED),
            declined=(*step_tally.ids(ApprovalStatus.REJECTED),
                      *step_tally.ids(ApprovalStatus.CHANGES_REQUESTED)),
            state=state,
            outcome=(GateOutcome.APPROVED if state == StepState.DONE
                     else outcome if number == walk.step else GateOutcome.PENDING),
            on_behalf_of=tuple((a.person.id, a.on_behalf_of.id) for a in to_ask[number]
                               if a.on_behalf_of is not None and a.person.id in asked)))
    admins = [t.admin for t in walk.tallies if t.admin is not None]
    admin = max(admins, key=lambda d: (d.decided_at, d.id)) if admins else None
    step_of = {request_id: number for number, t in enumerate(walk.tallies)
               for request_id in t.decisions}
    decisions = sorted((d for t in walk.tallies for d in t.decisions.values()),
                       key=lambda d: (d.decided_at, d.id))
    current = chain[walk.step]
    return GateStatus(
        occurrence_id=stored_id(occurrence),
        campaign_id=occurrence.campaign_id,
        occurrence_date=occurrence.occurrence_date,
        bundle_hash=occurrence.gate_bundle_hash or occurrence.bundle_hash or "",
        mode=current.mode.value,
        needed=0 if policy.pre_approved else required_approvals(current, len(tally.asked)),
        deadline=walk.deadlines[walk.step],
        asked=tuple(r.person_id for r in tally.asked),
        approved=tally.ids(ApprovalStatus.APPROVED),
        rejected=tally.ids(ApprovalStatus.REJECTED),
        changes_requested=tally.ids(ApprovalStatus.CHANGES_REQUESTED),
        pending=tally.ids(ApprovalStatus.PENDING),
        outcome=outcome,
        reason=reason,
        decided_by_admin=admin.decided_by.removeprefix(ADMIN_PREFIX) if admin else None,
        decisions=tuple(
            GateDecision(person_id=d.decided_by.removeprefix(ADMIN_PREFIX),
                         decision=d.decision, comment=d.comment, via=d.via,
                         decided_at=d.decided_at,
                         by_admin=d.decided_by.startswith(ADMIN_PREFIX),
                         step=step_of.get(d.request_id, 0))
            for d in decisions),
        steps=tuple(steps),
        step=walk.step,
        signatories=tuple(p for step, t in zip(chain, walk.tallies, strict=True) if step.signs
                          for p in t.ids(ApprovalStatus.APPROVED)),
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
    """The gate's status; ``changed`` when this call settled or escalated it. Walking
    the chain asks each step whose predecessor is approved (its mails are sent by
    :func:`newsroom.approval.notify_approvers`)."""
    occurrence = occurrence_of(session, occurrence_id)
    stored = GateOutcome(occurrence.gate_outcome) if occurrence.gate_outcome else None
    if stored in FINAL_OUTCOMES:
        walk = walk_chain(session, catalog, occurrence, now, write=False)
        reason = walk.reason
        if walk.tallies[walk.step].admin is None and walk.outcome != stored:
            reason = f"settled as {stored.value} at {occurrence.gate_settled_at}"
        return gate_status(catalog, occurrence, walk, stored, reason), False
    if stored == GateOutcome.ESCALATED:
        walk = walk_chain(session, catalog, occurrence, now, write=False)
        return gate_status(catalog, occurrence, walk, stored,
                           f"deadline passed, escalated at {occurrence.escalated_at}; waiting "
                           "for an admin decision"), False
    if occurrence.gate_bundle_hash is None:
        walk = walk_chain(session, catalog, occurrence, now, write=False)
        return gate_status(catalog, occurrence, walk, GateOutcome.PENDING,
                           "the gate has not been opened"), False
    if occurrence.bundle_hash != occurrence.gate_bundle_hash:
        walk = walk_chain(session, catalog, occurrence, now, write=False)
        return gate_status(catalog, occurrence, walk, GateOutcome.PENDING,
                           "the posts changed since approval was requested; open the gate "
                           "again"), False

    walk = walk_chain(session, catalog, occurrence, now, write=True)
    outcome, reason = walk.outcome, walk.reason
    if outcome == GateOutcome.PENDING:
        return gate_status(catalog, occurrence, walk, outcome, reason), False
    occurrence, changed = store.settle_gate(
        session, occurrence_id=stored_id(occurrence), bundle_hash=occurrence.gate_bundle_hash,
        outcome=outcome.value, at=now)
    status = gate_status(catalog, occurrence, walk, outcome, reason)
    if changed:
        action = "approval.escalated" if outcome == GateOutcome.ESCALATED else "approval.settled"
        audit(session, occurrence, action=action, content_hash=status.bundle_hash, at=now,
              detail={"outcome": outcome.value, "reason": reason,
                      "approved": list(status.approved), "rejected": list(status.rejected),
                      "changes_requested": list(status.changes_requested),
                      "asked": list(status.asked), "step": status.step})
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
    """Ask the first step's approvers about the occurrence's current bundle (the later
    steps are asked as the chain is walked: :func:`evaluate`). Idempotent; sends nothing.
    A new bundle voids the pending requests of every step: the chain starts again at its
    first step."""
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
            open_step(session, catalog, occurrence, 0, now)
        return evaluate(session, catalog, occurrence_id, now)[0]


def open_step(session: Session, catalog: Catalog, occurrence: Occurrence, number: int,
              now: datetime) -> None:
    """Ask the people of step ``number`` of the chain about the gate's bundle, by the
    step's deadline (their mails: :func:`newsroom.approval.notify_approvers`)."""
    policy = campaign_of(catalog, occurrence.campaign_id).approval
    bundle = occurrence.gate_bundle_hash or ""
    occurrence_id = stored_id(occurrence)
    deadline = step_deadline(catalog, occurrence.campaign_id, number, occurrence.first_publish_at)
    posts = {p.channel: p.content_hash
             for p in store.current_posts(session, occurrence_id=occurrence_id)}
    chain = resolve_chain(policy, catalog.index, occurrence.occurrence_date)
    for approver in chain[number]:
        request, created = store.ensure_approval_request(
            session, occurrence_id=occurrence_id, person_id=approver.person.id,
            bundle_hash=bundle, deadline=deadline, step=number)
        if created:
            audit(session, occurrence, action="approval.requested",
                  content_hash=bundle, at=now, detail={
                      "person": approver.person.id, "request_id": request.id,
                      "on_behalf_of": (approver.on_behalf_of.id
                                       if approver.on_behalf_of else None),
                      "deadline": deadline.isoformat(), "posts": posts, "step": number,
                      "step_name": step_name(catalog, policy.chain[number], number)})
