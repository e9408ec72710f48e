"""The approval gate: who must approve an occurrence's posts, and whether they have.

One gate per occurrence asks about exactly one bundle of posts (``gate_bundle_hash``):

    open_gate          ask every approver (deputies for the absent) about the current bundle
    notify_approvers   e-mail each asked person their personal link, once
    decide             a person's decision from the approval page (signed link)
    admin_decision     an admin settles the gate (Prefect UI form or CLI)
    evaluate_gate      what the requests and decisions amount to, deadline included
    process_deadlines  reminders before, expiry and escalation at the deadline

A changed bundle is a new question: ``open_gate`` voids the pending requests of the old
one and asks again. Once settled, an outcome never changes (an admin may settle an open
or escalated gate). Nothing here sends unless told to, and nothing imports Prefect.

Errors of a refused link (all :class:`ApprovalLinkError`, with the HTTP status a page
shows)::

    ApprovalLinkError
    ├── LinkForged        400  not our link, altered, or for something else
    ├── InvalidDecision   400  a decision or comment the form cannot have sent
    ├── WrongPerson       403  the link names another person than the request
    ├── LinkNotFound      404  no such request
    ├── LinkAlreadyUsed   409  the request has been decided
    ├── GateClosed        409  the gate was settled by others' decisions
    ├── ContentChanged    410  the posts changed since the link was sent
    └── LinkExpired       410  the deadline passed
"""

from __future__ import annotations

import difflib
import hashlib
import logging
import re
from collections.abc import Iterable, Sequence
from dataclasses import dataclass, replace
from datetime import UTC, date, datetime
from enum import StrEnum
from typing import Any

from sqlalchemy.engine import Engine
from sqlmodel import Session, col, select

from newsroom import store
from newsroom.approval_messages import (
    ApprovalMessageData,
    Message,
    PostPreview,
    approval_request_message,
    deadline_message,
    local_when,
    reminder_message,
)
from newsroom.catalog.approvers import resolve_approvers
from newsroom.catalog.catalog import Catalog
from newsroom.catalog.models import ApprovalMode, ApprovalPolicy, Campaign, TimeoutAction
from newsroom.catalog.roles import NotPermitted, Permission, authorize
from newsroom.errors import NewsroomError, StoreError
from newsroom.markdown import md_quote, md_text
from newsroom.posts import RenderedPost
from newsroom.signing import (
    APPROVAL,
    BadSignature,
    Expired,
    Signer,
    TokenClaims,
    WrongPurpose,
    is_short_token,
    short_token_ref,
)
from newsroom.store import (
    ApprovalDecision,
    ApprovalRequest,
    ApprovalStatus,
    Decision,
    DecisionVia,
    Occurrence,
    PostRecord,
    Publication,
)
from newsroom.timeutil import Duration, before, localize, parse_duration, parse_local_datetime

__all__ = [
    "ApprovalError",
    "ApprovalLinkError",
    "ContentChanged",
    "GateClosed",
    "GateDecision",
    "GateOutcome",
    "GateStatus",
    "InvalidDecision",
    "LinkAlreadyUsed",
    "LinkExpired",
    "LinkForged",
    "LinkNotFound",
    "LinkTarget",
    "WrongPerson",
    "admin_decision",
    "approval_link",
    "channel_label",
    "check_link",
    "decide",
    "evaluate_gate",
    "gate_deadline",
    "gate_summary_markdown",
    "gate_summary_of",
    "link_state",
    "notify_approvers",
    "open_gate",
    "previous_version",
    "process_deadlines",
    "reminder_times",
    "salutation",
    "word_diff",
]

logger = logging.getLogger("newsroom.approval")

ACTOR = "newsroom"
ADMIN_PREFIX = "admin:"
MAX_COMMENT = 2000
# Elapsed hours (see timeutil.before): 24 h and 2 h before the deadline, across DST too.
DEFAULT_REMINDERS = (parse_duration("24h"), parse_duration("2h"))


# --- errors ------------------------------------------------------------------------------


class ApprovalError(NewsroomError):
    """The gate cannot do what was asked (e.g. an admin decision on a settled gate)."""


class ApprovalLinkError(ApprovalError):
    status_code = 400
    # Set by check_link when the link is genuine and bound to its request (its person, its
    # content): the page may then tell its holder what became of the request and the gate.
    # Never set for a forged link, another person's or another content's.
    target: LinkTarget | None = None


class LinkForged(ApprovalLinkError):
    status_code = 400


class InvalidDecision(ApprovalLinkError):
    status_code = 400


class WrongPerson(ApprovalLinkError):
    status_code = 403


class LinkNotFound(ApprovalLinkError):
    status_code = 404


class LinkAlreadyUsed(ApprovalLinkError):
    status_code = 409

    def __init__(self, message: str, *, status: str = "", decided_at: datetime | None = None):
        self.status = status
        self.decided_at = decided_at
        super().__init__(message)


class GateClosed(ApprovalLinkError):
    status_code = 409

    def __init__(self, message: str, *, outcome: str = ""):
        self.outcome = outcome
        super().__init__(message)


class ContentChanged(ApprovalLinkError):
    status_code = 410


class LinkExpired(ApprovalLinkError):
    status_code = 410


# --- values ------------------------------------------------------------------------------


class GateOutcome(StrEnum):
    PENDING = "pending"
    APPROVED = "approved"
    REJECTED = "rejected"
    CHANGES_REQUESTED = "changes_requested"
    CANCELLED = "cancelled"
    ESCALATED = "escalated"


_FINAL = {GateOutcome.APPROVED, GateOutcome.REJECTED, GateOutcome.CHANGES_REQUESTED,
          GateOutcome.CANCELLED}
_ADMIN_OUTCOME = {
    Decision.APPROVE.value: GateOutcome.APPROVED,
    Decision.REJECT.value: GateOutcome.REJECTED,
    Decision.REQUEST_CHANGES.value: GateOutcome.CHANGES_REQUESTED,
}


@dataclass(frozen=True)
class GateDecision:
    """One decision on the gate's bundle: a person's (approval page) or an admin's."""

    person_id: str  # registry id; for an admin without the "admin:" prefix
    decision: str  # approve, reject, request_changes
    comment: str
    via: str  # link, prefect_ui, cli
    decided_at: datetime
    by_admin: bool = False


_DECISION_WORDS = {
    Decision.APPROVE.value: "freigegeben / approved",
    Decision.REJECT.value: "abgelehnt / rejected",
    Decision.REQUEST_CHANGES.value: "Änderungen erbeten / changes requested",
}


@dataclass(frozen=True)
class GateStatus:
    occurrence_id: int
    campaign_id: str
    occurrence_date: date
    bundle_hash: str
    mode: str
    needed: int
    deadline: datetime
    asked: tuple[str, ...]  # person ids asked for the gate's bundle, in order
    approved: tuple[str, ...]
    rejected: tuple[str, ...]
    changes_requested: tuple[str, ...]
    pending: tuple[str, ...]
    outcome: GateOutcome
    reason: str  # English, for logs and artifacts
    decided_by_admin: str | None = None
    decisions: tuple[GateDecision, ...] = ()  # oldest first

    def decision_line(self, catalog: Catalog, decision: GateDecision) -> str:
        """One line for a run's log: who decided what, when, with which comment, and
        where the gate stands (n of m)."""
        who = _display(catalog, decision.person_id) + (" (admin)" if decision.by_admin else "")
        comment = f' – "{" ".join(decision.comment.split())[:300]}"' if decision.comment else ""
        return (f"approval of {self.campaign_id} {self.occurrence_date}: {who} "
                f"{decision.decision} at {decision.decided_at.isoformat(timespec='seconds')} "
                f"via {decision.via}{comment}; {len(self.approved)} of {self.needed} needed "
                f"approvals ({len(self.asked)} asked), gate {self.outcome.value}")

    @property
    def settled(self) -> bool:
        """True once final; ESCALATED still waits for an admin."""
        return self.outcome in _FINAL

    def signatory_names(self, catalog: Catalog) -> list[str]:
        """Display names of those who approved, in the order they were asked."""
        names = []
        for person_id in self.asked:
            if person_id in self.approved:
                person = catalog.index.people.get(person_id)
                names.append(person.display if person else person_id)
        return names


@dataclass(frozen=True)
class LinkTarget:
    """What a valid approval link points at."""

    claims: TokenClaims
    request: ApprovalRequest
    occurrence: Occurrence


# --- policy ------------------------------------------------------------------------------


def _campaign(catalog: Catalog, campaign_id: str) -> Campaign:
    try:
        return catalog.campaign(campaign_id).campaign
    except LookupError as exc:
        raise ApprovalError(str(exc)) from None


def gate_deadline(catalog: Catalog, campaign_id: str, first_publish_at: datetime) -> datetime:
    """When approvals are due (UTC): the policy's absolute deadline, or ``deadline_before``
    the first publication (:func:`newsroom.timeutil.before`: days on the wall clock, so
    ``1d`` before 10:00 is 10:00 the day before across DST, whatever zone
    ``first_publish_at`` is given in); a pre-approved campaign's gate closes at publication."""
    policy = _campaign(catalog, campaign_id).approval
    if policy.deadline:
        return localize(parse_local_datetime(policy.deadline)).astimezone(UTC)
    if policy.deadline_before:
        return before(first_publish_at, parse_duration(policy.deadline_before))
    return first_publish_at.astimezone(UTC)


def _needed(policy: ApprovalPolicy, asked: int) -> int:
    if policy.mode == ApprovalMode.ONE:
        return 1
    if policy.mode == ApprovalMode.ALL:
        return asked
    return policy.quorum or asked


def _rule_german(policy: ApprovalPolicy, asked: int) -> str:
    if policy.pre_approved:
        return "vorab freigegeben"
    if policy.mode == ApprovalMode.ONE:
        return "eine Freigabe genügt"
    if policy.mode == ApprovalMode.ALL:
        return f"alle {asked} Angefragten müssen freigeben"
    return f"mindestens {policy.quorum} von {asked} Angefragten müssen freigeben"


def _requested_by(catalog: Catalog, campaign: Campaign) -> str:
    requester = campaign.requested_by
    if requester.portfolio:
        portfolio = catalog.index.portfolios.get(requester.portfolio)
        return portfolio.name if portfolio else requester.portfolio
    office = catalog.index.offices.get(requester.office or "")
    return office.name if office else (requester.office or "")


def _display(catalog: Catalog, person_id: str) -> str:
    person = catalog.index.people.get(person_id)
    return person.display if person else person_id


def _now(now: datetime | None) -> datetime:
    now = now or datetime.now(UTC)
    if now.tzinfo is None or now.utcoffset() is None:
        raise ValueError("now must be timezone-aware")
    return now.astimezone(UTC)


# --- reading the gate --------------------------------------------------------------------


def _occurrence(session: Session, occurrence_id: int) -> Occurrence:
    occurrence = session.get(Occurrence, occurrence_id, populate_existing=True)
    if occurrence is None:
        raise ApprovalError(f"no occurrence with id {occurrence_id}")
    return occurrence


def _gate_requests(session: Session, occurrence: Occurrence) -> list[ApprovalRequest]:
    """The requests about the gate's bundle, people first, admins last (not void)."""
    if occurrence.gate_bundle_hash is None:
        return []
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


@dataclass
class _Tally:
    asked: list[ApprovalRequest]
    decisions: dict[int, ApprovalDecision]
    admin: ApprovalDecision | None
    # Read as if the deadline had expired the pending requests (what the sweeper will
    # store), without writing: what a page shows between the deadline and the sweep.
    pending_expired: bool = False

    def _status_of(self, request: ApprovalRequest) -> str:
        if self.pending_expired and request.status == ApprovalStatus.PENDING.value:
            return ApprovalStatus.EXPIRED.value
        return request.status

    def ids(self, status: ApprovalStatus) -> tuple[str, ...]:
        return tuple(r.person_id for r in self.asked if self._status_of(r) == status.value)


def _tally(session: Session, occurrence: Occurrence) -> _Tally:
    requests = _gate_requests(session, occurrence)
    people = [r for r in requests if not r.person_id.startswith(ADMIN_PREFIX)]
    decisions = _decisions(session, requests)
    admin = [decisions[r.id] for r in requests
             if r.person_id.startswith(ADMIN_PREFIX) and r.id in decisions]
    return _Tally(people, decisions, admin[-1] if admin else None)


def _rule_outcome(policy: ApprovalPolicy, tally: _Tally) -> tuple[GateOutcome, str]:
    """What the decisions say before any deadline is applied."""
    if policy.pre_approved:
        return GateOutcome.APPROVED, "the campaign is pre-approved"
    asked = len(tally.asked)
    if not asked:
        return GateOutcome.PENDING, "nobody has been asked yet"
    approved = len(tally.ids(ApprovalStatus.APPROVED))
    rejected = len(tally.ids(ApprovalStatus.REJECTED))
    changes = len(tally.ids(ApprovalStatus.CHANGES_REQUESTED))
    pending = len(tally.ids(ApprovalStatus.PENDING))
    needed = _needed(policy, asked)
    if policy.mode == ApprovalMode.ONE:
        decided = sorted((d for d in tally.decisions.values()
                          if d.request_id in {r.id for r in tally.asked}),
                         key=lambda d: (d.decided_at, d.id))
        if decided:
            first = decided[0]
            outcome = _ADMIN_OUTCOME[first.decision]
            return outcome, f"{first.decided_by} decided {first.decision} (mode one)"
        return GateOutcome.PENDING, f"waiting for one of {asked} approvers"
    if policy.mode == ApprovalMode.ALL:
        if rejected:
            return GateOutcome.REJECTED, f"{rejected} of {asked} rejected (mode all)"
        if changes:
            return (GateOutcome.CHANGES_REQUESTED,
                    f"{changes} of {asked} requested changes (mode all)")
        if approved == asked:
            return GateOutcome.APPROVED, f"all {asked} approved"
        return GateOutcome.PENDING, f"{approved} of {asked} approved, all needed"
    # quorum
    collecting = policy.on_timeout == TimeoutAction.PUBLISH_IF_QUORUM and pending > 0
    if approved >= needed and not collecting:
        return GateOutcome.APPROVED, (f"quorum reached: {approved} of {asked} approved "
                                      f"(needed {needed})")
    if approved + pending < needed and (rejected or changes):
        outcome = GateOutcome.REJECTED if rejected else GateOutcome.CHANGES_REQUESTED
        return outcome, (f"quorum of {needed} can no longer be reached: {approved} approved, "
                         f"{rejected} rejected, {changes} requested changes, {pending} pending")
    if approved >= needed:
        return GateOutcome.PENDING, (f"quorum reached ({approved} of {needed}); collecting "
                                     "signatures until the deadline")
    return GateOutcome.PENDING, f"{approved} of {needed} needed approvals, {pending} pending"


def _timeout_outcome(policy: ApprovalPolicy, tally: _Tally) -> tuple[GateOutcome, str]:
    approved = len(tally.ids(ApprovalStatus.APPROVED))
    needed = _needed(policy, len(tally.asked))
    if policy.on_timeout == TimeoutAction.ESCALATE:
        return GateOutcome.ESCALATED, (f"deadline passed with {approved} of {needed} needed "
                                       "approvals; escalated to the communications office")
    if policy.on_timeout == TimeoutAction.PUBLISH_IF_QUORUM and approved >= needed:
        return GateOutcome.APPROVED, (f"deadline passed; quorum met with {approved} approvals "
                                      f"(needed {needed})")
    return GateOutcome.CANCELLED, (f"deadline passed with {approved} of {needed} needed "
                                   f"approvals (on_timeout {policy.on_timeout.value})")


def _outcome_after_deadline(policy: ApprovalPolicy, tally: _Tally) -> tuple[GateOutcome, str]:
    """What the gate comes to once the deadline expired the pending requests."""
    outcome, reason = _rule_outcome(policy, tally)
    if outcome == GateOutcome.PENDING:
        outcome, reason = _timeout_outcome(policy, tally)
    return outcome, reason


def _deadline_of(catalog: Catalog, occurrence: Occurrence, tally: _Tally) -> datetime:
    if tally.asked:
        return tally.asked[0].deadline
    return gate_deadline(catalog, occurrence.campaign_id, occurrence.first_publish_at)


def _status(catalog: Catalog, occurrence: Occurrence, tally: _Tally, outcome: GateOutcome,
            reason: str) -> GateStatus:
    policy = _campaign(catalog, occurrence.campaign_id).approval
    admin = tally.admin.decided_by.removeprefix(ADMIN_PREFIX) if tally.admin else None
    return GateStatus(
        occurrence_id=occurrence.id,
        campaign_id=occurrence.campaign_id,
        occurrence_date=occurrence.occurrence_date,
        bundle_hash=occurrence.gate_bundle_hash or occurrence.bundle_hash or "",
        mode=policy.mode.value,
        needed=0 if policy.pre_approved else _needed(policy, len(tally.asked)),
        deadline=_deadline_of(catalog, occurrence, tally),
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


def _audit(session: Session, occurrence: Occurrence, *, action: str, actor: str = ACTOR,
           content_hash: str | None = None, channel: str | None = None,
           detail: dict[str, Any] | None = None, at: datetime | None = None) -> None:
    store.record_audit(session, campaign_id=occurrence.campaign_id,
                       occurrence_date=occurrence.occurrence_date, actor=actor, action=action,
                       content_hash=content_hash, channel=channel, detail=detail, at=at)


def _evaluate(session: Session, catalog: Catalog, occurrence_id: int,
              now: datetime) -> tuple[GateStatus, bool]:
    """The gate's status; ``changed`` when this call settled or escalated it."""
    occurrence = _occurrence(session, occurrence_id)
    policy = _campaign(catalog, occurrence.campaign_id).approval
    tally = _tally(session, occurrence)
    stored = GateOutcome(occurrence.gate_outcome) if occurrence.gate_outcome else None
    if stored in _FINAL:
        outcome, reason = _rule_outcome(policy, tally)
        if tally.admin is not None:
            reason = (f"admin {tally.admin.decided_by.removeprefix(ADMIN_PREFIX)} decided "
                      f"{tally.admin.decision} via {tally.admin.via}")
        elif outcome != stored:
            reason = f"settled as {stored.value} at {occurrence.gate_settled_at}"
        return _status(catalog, occurrence, tally, stored, reason), False
    if stored == GateOutcome.ESCALATED:
        return _status(catalog, occurrence, tally, stored,
                       f"deadline passed, escalated at {occurrence.escalated_at}; waiting for "
                       "an admin decision"), False
    if occurrence.gate_bundle_hash is None:
        return _status(catalog, occurrence, tally, GateOutcome.PENDING,
                       "the gate has not been opened"), False
    if occurrence.bundle_hash != occurrence.gate_bundle_hash:
        return _status(catalog, occurrence, tally, GateOutcome.PENDING,
                       "the posts changed since approval was requested; open the gate again"
                       ), False

    outcome, reason = _rule_outcome(policy, tally)
    deadline = _deadline_of(catalog, occurrence, tally)
    if outcome == GateOutcome.PENDING and now >= deadline:
        expired = store.expire_overdue_requests(session, now=now, occurrence_id=occurrence.id)
        for request in expired:
            _audit(session, occurrence, action="approval.expired",
                   content_hash=request.bundle_hash, at=now,
                   detail={"person": request.person_id, "request_id": request.id})
        tally = _tally(session, occurrence)
        outcome, reason = _outcome_after_deadline(policy, tally)
    if outcome == GateOutcome.PENDING:
        return _status(catalog, occurrence, tally, outcome, reason), False
    occurrence, changed = store.settle_gate(
        session, occurrence_id=occurrence.id, bundle_hash=occurrence.gate_bundle_hash,
        outcome=outcome.value, at=now)
    status = _status(catalog, occurrence, tally, outcome, reason)
    if changed:
        action = "approval.escalated" if outcome == GateOutcome.ESCALATED else "approval.settled"
        _audit(session, occurrence, action=action, content_hash=status.bundle_hash, at=now,
               detail={"outcome": outcome.value, "reason": reason,
                       "approved": list(status.approved), "rejected": list(status.rejected),
                       "changes_requested": list(status.changes_requested),
                       "asked": list(status.asked)})
    elif occurrence.gate_outcome != outcome.value:
        # Another process settled it first: report what is stored.
        return _evaluate(session, catalog, occurrence_id, now)
    return status, changed


def evaluate_gate(engine: Engine, catalog: Catalog, *, occurrence_id: int,
                  now: datetime | None = None) -> GateStatus:
    """What the gate's requests and decisions amount to now (settles it when they do)."""
    with store.session_scope(engine) as session:
        return _evaluate(session, catalog, occurrence_id, _now(now))[0]


# --- opening the gate --------------------------------------------------------------------


def open_gate(engine: Engine, catalog: Catalog, *, occurrence_id: int,
              now: datetime | None = None) -> GateStatus:
    """Ask every approver about the occurrence's current bundle. Idempotent; sends nothing."""
    now = _now(now)
    with store.session_scope(engine) as session:
        occurrence = _occurrence(session, occurrence_id)
        if occurrence.bundle_hash is None:
            raise ApprovalError(
                f"occurrence {occurrence.campaign_id}/{occurrence.occurrence_date} has no "
                "rendered posts; render and store them before opening the gate")
        campaign = _campaign(catalog, occurrence.campaign_id)
        policy = campaign.approval
        bundle = occurrence.bundle_hash
        store.set_gate_bundle(session, occurrence_id=occurrence_id, bundle_hash=bundle)
        for request in store.void_stale_requests(session, occurrence_id=occurrence_id):
            _audit(session, occurrence, action="approval.voided",
                   content_hash=request.bundle_hash, at=now,
                   detail={"person": request.person_id, "request_id": request.id,
                           "new_bundle": bundle})
        occurrence = _occurrence(session, occurrence_id)
        if occurrence.gate_outcome is None and not policy.pre_approved:
            deadline = gate_deadline(catalog, occurrence.campaign_id, occurrence.first_publish_at)
            posts = {p.channel: p.content_hash
                     for p in store.current_posts(session, occurrence_id=occurrence_id)}
            for approver in resolve_approvers(policy, catalog.index, occurrence.occurrence_date):
                request, created = store.ensure_approval_request(
                    session, occurrence_id=occurrence_id, person_id=approver.person.id,
                    bundle_hash=bundle, deadline=deadline)
                if created:
                    _audit(session, occurrence, action="approval.requested",
                           content_hash=bundle, at=now, detail={
                               "person": approver.person.id, "request_id": request.id,
                               "on_behalf_of": (approver.on_behalf_of.id
                                                if approver.on_behalf_of else None),
                               "deadline": deadline.isoformat(), "posts": posts})
        return _evaluate(session, catalog, occurrence_id, now)[0]


# --- links -------------------------------------------------------------------------------


def approval_link(signer: Signer, request: ApprovalRequest, base_url: str) -> str:
    """The person's link to the approval page, short enough to read in an e-mail: a short
    token (:meth:`Signer.issue_short`) bound to the request's nonce, person and content.
    It holds until the request's deadline and while the request is pending; every mail
    about the request (the first, the reminders) carries the same link."""
    token = signer.issue_short(purpose=APPROVAL, ref=request.id,
                               binding=_short_binding(request))
    return f"{base_url.rstrip('/')}/freigabe/{token}"


def _short_binding(request: ApprovalRequest) -> tuple[str, ...]:
    return (request.token_nonce, request.person_id, request.bundle_hash)


def check_link(engine: Engine, signer: Signer, token: str, *,
               now: datetime | None = None, require_pending: bool = True) -> LinkTarget:
    """The request a genuine, current link points at; else an :class:`ApprovalLinkError`.

    ``token`` is a short token (what the mails carry) or a long signed one (what they
    carried before, still valid until its deadline)."""
    now = _now(now)
    if is_short_token(token):
        target = _short_target(engine, signer, token)
        if now >= target.request.deadline:
            expired = LinkExpired(f"the link expired at {target.request.deadline.isoformat()}")
            expired.target = target
            raise expired
    else:
        target = _signed_target(engine, signer, token, now)
    request, occurrence = target.request, target.occurrence
    refused: ApprovalLinkError | None = None
    if request.status == ApprovalStatus.VOID.value or (
            request.status == ApprovalStatus.PENDING.value
            and occurrence.bundle_hash != request.bundle_hash):
        refused = ContentChanged(f"the posts of request {request.id} changed after it was "
                                 "sent")
    elif request.status == ApprovalStatus.EXPIRED.value:
        refused = LinkExpired(f"request {request.id} expired")
    elif require_pending and request.status != ApprovalStatus.PENDING.value:
        refused = LinkAlreadyUsed(f"request {request.id} is {request.status}",
                                  status=request.status, decided_at=request.decided_at)
    elif require_pending and occurrence.gate_outcome is not None:
        refused = GateClosed(f"the gate of occurrence {occurrence.id} is "
                             f"{occurrence.gate_outcome}", outcome=occurrence.gate_outcome)
    if refused is not None:
        refused.target = target
        raise refused
    return target


def _short_target(engine: Engine, signer: Signer, token: str) -> LinkTarget:
    """The request a short token is bound to. A request that does not exist and a MAC
    that does not match are the same :class:`LinkForged`: trying ids learns nothing."""
    request_id = short_token_ref(token)
    with store.session_scope(engine) as session:
        request = session.get(ApprovalRequest, request_id)
        occurrence = session.get(Occurrence, request.occurrence_id) if request else None
    if request is None or occurrence is None:
        raise LinkForged("the link's signature does not match")
    try:
        signer.verify_short(token, purpose=APPROVAL, binding=_short_binding(request))
    except BadSignature as exc:
        raise LinkForged(str(exc)) from None
    claims = TokenClaims(
        purpose=APPROVAL, subject={"request": request.id, "nonce": request.token_nonce},
        person=request.person_id, content_hash=request.bundle_hash,
        # What the audit trail and the CSRF field name the link by: not the token itself.
        nonce=hashlib.sha256(token.encode("ascii")).hexdigest()[:32],
        expires_at=request.deadline, issued_at=request.created_at)
    return LinkTarget(claims, request, occurrence)


def _signed_target(engine: Engine, signer: Signer, token: str, now: datetime) -> LinkTarget:
    """The request a long signed token points at (its person, its content); else the
    error that says why not."""
    try:
        claims = signer.verify(token, purpose=APPROVAL, now=now)
    except Expired as exc:
        # Genuine but expired: bound to its request, it may still say what became of it.
        expired = LinkExpired(str(exc))
        expired.target = _bound_target(engine, exc.claims)
        raise expired from None
    except (BadSignature, WrongPurpose) as exc:
        raise LinkForged(str(exc)) from None
    request_id = claims.subject.get("request")
    if not isinstance(request_id, int) or isinstance(request_id, bool):
        raise LinkForged("the link names no approval request")
    with store.session_scope(engine) as session:
        request = session.get(ApprovalRequest, request_id)
        occurrence = session.get(Occurrence, request.occurrence_id) if request else None
    if request is None or occurrence is None or (
            claims.subject.get("nonce") != request.token_nonce):
        raise LinkNotFound(f"no approval request {request_id} for this link")
    if claims.person != request.person_id:
        raise WrongPerson(f"the link was issued to {claims.person!r}, the request asks "
                          f"{request.person_id!r}")
    if claims.content_hash != request.bundle_hash:
        raise LinkForged("the link's content does not match its request")
    return LinkTarget(claims, request, occurrence)


def _bound_target(engine: Engine, claims: TokenClaims) -> LinkTarget | None:
    """The request a genuine (expired) token is bound to: same request, nonce, person and
    content; else None, and the page says no more than "expired"."""
    request_id = claims.subject.get("request")
    if not isinstance(request_id, int) or isinstance(request_id, bool):
        return None
    with store.session_scope(engine) as session:
        request = session.get(ApprovalRequest, request_id)
        occurrence = session.get(Occurrence, request.occurrence_id) if request else None
    if (request is None or occurrence is None
            or claims.subject.get("nonce") != request.token_nonce
            or claims.person != request.person_id
            or claims.content_hash != request.bundle_hash):
        return None
    return LinkTarget(claims, request, occurrence)


def decide(engine: Engine, catalog: Catalog, *, token: str, decision: str, comment: str,
           signer: Signer, now: datetime | None = None) -> GateStatus:
    """Record the decision a person made on the approval page; the gate's new status."""
    now = _now(now)
    if decision not in _ADMIN_OUTCOME:
        raise InvalidDecision(f"unknown decision {decision[:40]!r}")
    if not isinstance(comment, str) or len(comment) > MAX_COMMENT:
        raise InvalidDecision(f"the comment is longer than {MAX_COMMENT} characters")
    comment = comment.replace("\x00", "").strip()
    # Apply a passed deadline first, so a late click meets an expired request.
    target = check_link(engine, signer, token, now=now, require_pending=False)
    evaluate_gate(engine, catalog, occurrence_id=target.occurrence.id, now=now)
    target = check_link(engine, signer, token, now=now)
    request = target.request
    with store.session_scope(engine) as session:
        try:
            store.record_decision(session, request_id=request.id, decision=decision,
                                  decided_by=request.person_id, via=DecisionVia.LINK.value,
                                  bundle_hash=request.bundle_hash, comment=comment,
                                  decided_at=now)
        except StoreError:
            session.rollback()
            # Lost a race (a second click, a re-render): say which.
            check_link(engine, signer, token, now=now)
            raise LinkAlreadyUsed(f"request {request.id} could not be decided") from None
        occurrence = _occurrence(session, request.occurrence_id)
        _audit(session, occurrence, action="approval.decided", actor=request.person_id,
               content_hash=request.bundle_hash, at=now,
               detail={"decision": decision, "comment": comment, "request_id": request.id,
                       "via": DecisionVia.LINK.value, "token_nonce": target.claims.nonce})
        return _evaluate(session, catalog, request.occurrence_id, now)[0]


def admin_decision(engine: Engine, catalog: Catalog, *, occurrence_id: int, decision: str,
                   comment: str, admin: str, via: str = "prefect_ui",
                   now: datetime | None = None, refusal_key: str | None = None) -> GateStatus:
    """An admin settles an open or escalated gate: approve, reject or request_changes.

    ``admin`` must name a person of the registry whose roles allow deciding a gate
    (:func:`newsroom.catalog.roles.authorize`); anyone else is refused with
    :class:`~newsroom.catalog.roles.NotPermitted`, and the refusal is audited
    (``approval.admin_refused``; once per ``refusal_key`` when given, so a run that
    replays the same input does not record it twice). The decision is recorded under
    the person's id (``admin:<id>``).
    """
    now = _now(now)
    if decision not in _ADMIN_OUTCOME:
        raise ApprovalError(f"decision must be one of {', '.join(_ADMIN_OUTCOME)}, "
                            f"not {decision!r}")
    via = DecisionVia(via).value
    try:
        person = authorize(catalog.index, admin, Permission.DECIDE_GATE)
    except NotPermitted as exc:
        with store.session_scope(engine) as session:
            occurrence = _occurrence(session, occurrence_id)
            event = dict(campaign_id=occurrence.campaign_id,
                         occurrence_date=occurrence.occurrence_date, actor=f"refused:{via}",
                         action="approval.admin_refused",
                         content_hash=occurrence.gate_bundle_hash, at=now,
                         detail={"named": " ".join(admin.split())[:100],
                                 "decision": decision, "via": via, "reason": str(exc)})
            if refusal_key:
                store.record_audit_once(session, once_key=refusal_key, **event)
            else:
                store.record_audit(session, **event)
        logger.warning("admin decision on %s/%s refused: %s", event["campaign_id"],
                       event["occurrence_date"], exc)
        raise
    with store.session_scope(engine) as session:
        status, _ = _evaluate(session, catalog, occurrence_id, now)
        occurrence = _occurrence(session, occurrence_id)
        if status.settled:
            raise ApprovalError(f"the gate of {occurrence.campaign_id}/"
                                f"{occurrence.occurrence_date} is settled already "
                                f"({status.outcome.value}); an admin decides only open or "
                                "escalated gates")
        if occurrence.gate_bundle_hash is None or (
                occurrence.gate_bundle_hash != occurrence.bundle_hash):
            raise ApprovalError("the gate does not ask about the current posts; open it first")
        decided_by = f"{ADMIN_PREFIX}{person.id}"
        request, _ = store.ensure_approval_request(
            session, occurrence_id=occurrence_id, person_id=decided_by,
            bundle_hash=occurrence.gate_bundle_hash, deadline=status.deadline)
        store.record_decision(session, request_id=request.id, decision=decision,
                              decided_by=decided_by, via=via,
                              bundle_hash=occurrence.gate_bundle_hash, comment=comment,
                              decided_at=now)
        outcome = _ADMIN_OUTCOME[decision]
        store.settle_gate(session, occurrence_id=occurrence_id,
                          bundle_hash=occurrence.gate_bundle_hash, outcome=outcome.value, at=now)
        _audit(session, occurrence, action="approval.admin_decided", actor=decided_by,
               content_hash=occurrence.gate_bundle_hash, at=now,
               detail={"decision": decision, "comment": comment, "via": via,
                       "named": " ".join(admin.split())[:100],
                       "previous": status.outcome.value})
        _audit(session, occurrence, action="approval.settled", actor=decided_by,
               content_hash=occurrence.gate_bundle_hash, at=now,
               detail={"outcome": outcome.value, "reason": f"admin decision via {via}",
                       "approved": list(status.approved), "asked": list(status.asked)})
        return _evaluate(session, catalog, occurrence_id, now)[0]


# --- messages ----------------------------------------------------------------------------


def _gate_posts(session: Session, occurrence: Occurrence) -> list[RenderedPost]:
    return [row.to_rendered() for row in store.current_posts(session, occurrence_id=occurrence.id)]


def channel_label(catalog: Catalog, channel: str) -> str:
    """The channel as people know it (:attr:`ChannelAccount.label`): ``Mastodon
    (@darmstadt@social.example.org)``, ``Darmstadt informiert (Telegram)``."""
    account = catalog.accounts.get(channel)
    return account.label if account is not None else channel


def _previews(catalog: Catalog, posts: Sequence[RenderedPost]) -> tuple[PostPreview, ...]:
    return tuple(PostPreview(channel_label(catalog, post.channel), post)
                 for post in sorted(posts, key=lambda p: (p.publish_at, p.channel)))


def salutation(catalog: Catalog, person_id: str) -> str:
    """How the mails and the approval page greet the person: the registry's
    :attr:`Person.salutation_line` (``Sehr geehrte Frau Bürgermeisterin Akdeniz,``)."""
    person = catalog.index.people.get(person_id)
    return person.salutation_line if person else "Guten Tag,"


def _on_behalf_of(catalog: Catalog, campaign: Campaign, day: date) -> dict[str, str]:
    try:
        approvers = resolve_approvers(campaign.approval, catalog.index, day)
    except LookupError:
        return {}
    return {a.person.id: a.on_behalf_of.display for a in approvers if a.on_behalf_of}


def _message_data(session: Session, catalog: Catalog, occurrence: Occurrence,
                  request: ApprovalRequest, link: str, asked: Sequence[str]) -> ApprovalMessageData:
    campaign = _campaign(catalog, occurrence.campaign_id)
    changed = previous_version(session, occurrence=occurrence) is not None
    return ApprovalMessageData(
        title=campaign.title,
        occurrence_date=occurrence.occurrence_date,
        requested_by=_requested_by(catalog, campaign),
        salutation=salutation(catalog, request.person_id),
        on_behalf_of=_on_behalf_of(catalog, campaign, occurrence.occurrence_date).get(
            request.person_id),
        deadline=request.deadline,
        link=link,
        posts=_previews(catalog, _gate_posts(session, occurrence)),
        others=tuple(_display(catalog, p) for p in asked if p != request.person_id),
        rule=_rule_german(campaign.approval, len(asked)),
        joint=campaign.signatories_in_text,
        changed=changed,
    )


def _send(notifier: Any, tag: str, message: Message) -> bool:
    try:
        return bool(notifier.notify(tag, message.subject, message.text, message.html))
    except Exception as exc:  # a notifier must not break the gate; the sweeper retries
        logger.warning("sending %r to %r failed: %s", message.subject, tag, type(exc).__name__)
        return False


def notify_approvers(engine: Engine, catalog: Catalog, *, occurrence_id: int, notifier: Any,
                     signer: Signer, base_url: str, now: datetime | None = None) -> list[str]:
    """E-mail every asked person not yet notified about the gate's bundle; once each.

    The messages are built in one transaction and sent outside any: on SQLite a
    transaction holds the write lock, and a slow mail server must not stall every other
    run. Each sent message is then marked in its own short transaction.
    """
    now = _now(now)
    sent: list[str] = []
    outbox: list[tuple[int, str, str, Any]] = []
    with store.session_scope(engine) as session:
        occurrence = _occurrence(session, occurrence_id)
        if occurrence.gate_outcome is not None:
            return sent
        tally = _tally(session, occurrence)
        asked = [r.person_id for r in tally.asked]
        for request in tally.asked:
            if request.status != ApprovalStatus.PENDING.value or request.notified_at is not None:
                continue
            link = approval_link(signer, request, base_url)
            message = approval_request_message(
                _message_data(session, catalog, occurrence, request, link, asked))
            outbox.append((request.id, request.person_id, request.bundle_hash, message))
    for request_id, person_id, bundle, message in outbox:
        if not _send(notifier, person_id, message):
            continue
        with store.session_scope(engine) as session:
            occurrence = _occurrence(session, occurrence_id)
            store.mark_request_notified(session, request_id=request_id, at=now)
            _audit(session, occurrence, action="approval.notified",
                   content_hash=bundle, channel="email", at=now,
                   detail={"person": person_id, "tag": person_id,
                           "request_id": request_id, "subject": message.subject})
        sent.append(person_id)
    return sent


def process_deadlines(engine: Engine, catalog: Catalog, *, notifier: Any, signer: Signer,
                      base_url: str, now: datetime | None = None,
                      reminders: Sequence[Duration] = DEFAULT_REMINDERS) -> list[GateStatus]:
    """Reminders before the deadline; expiry, cancellation or escalation at it.

    Returns the gates this call settled or escalated (their flow runs can resume).
    """
    now = _now(now)
    changed_gates: list[GateStatus] = []
    with store.session_scope(engine) as session:
        gate_ids = [o.id for o in store.open_gates(session)]
    for occurrence_id in gate_ids:
        try:
            with store.session_scope(engine) as session:
                occurrence = _occurrence(session, occurrence_id)
                if occurrence.gate_outcome is not None:
                    continue
                _remind(session, catalog, occurrence, notifier, signer, base_url, now,
                        reminders)
                status, changed = _evaluate(session, catalog, occurrence_id, now)
                if changed:
                    changed_gates.append(status)
                    if now >= status.deadline and status.outcome in (
                            GateOutcome.ESCALATED, GateOutcome.CANCELLED, GateOutcome.APPROVED):
                        _tell_office(session, catalog, occurrence, status, notifier, now)
        except ApprovalError as exc:
            logger.warning("gate of occurrence %s skipped: %s", occurrence_id, exc)
    return changed_gates


def reminder_times(deadline: datetime, reminders: Sequence[Duration] = DEFAULT_REMINDERS
                   ) -> list[datetime]:
    """When the reminders for ``deadline`` are due (UTC), in order: each one ``before``
    the deadline, as every "before" in a campaign file."""
    return sorted(before(deadline, mark) for mark in reminders)


def _remind(session: Session, catalog: Catalog, occurrence: Occurrence, notifier: Any,
            signer: Signer, base_url: str, now: datetime, reminders: Sequence[Duration]) -> None:
    if occurrence.bundle_hash != occurrence.gate_bundle_hash:
        return
    tally = _tally(session, occurrence)
    asked = [r.person_id for r in tally.asked]
    for request in tally.asked:
        if (request.status != ApprovalStatus.PENDING.value or request.notified_at is None
                or now >= request.deadline):
            continue
        due = [at for at in reminder_times(request.deadline, reminders) if at <= now]
        if len(due) <= request.reminders_sent:
            continue
        new = due[request.reminders_sent:]
        if any(mark > request.notified_at for mark in new):
            link = approval_link(signer, request, base_url)
            message = reminder_message(
                _message_data(session, catalog, occurrence, request, link, asked))
            if not _send(notifier, request.person_id, message):
                continue
            _audit(session, occurrence, action="approval.reminded",
                   content_hash=request.bundle_hash, channel="email", at=now,
                   detail={"person": request.person_id, "request_id": request.id,
                           "reminder": len(due)})
        store.set_reminders_sent(session, request_id=request.id, count=len(due))


def _tell_office(session: Session, catalog: Catalog, occurrence: Occurrence,
                 status: GateStatus, notifier: Any, now: datetime) -> None:
    campaign = _campaign(catalog, occurrence.campaign_id)
    policy = campaign.approval
    message = deadline_message(
        title=campaign.title, occurrence_date=occurrence.occurrence_date,
        outcome=status.outcome.value, deadline=status.deadline,
        approved=[_display(catalog, p) for p in status.approved],
        declined=[_display(catalog, p) for p in (*status.rejected, *status.changes_requested)],
        missing=[_display(catalog, p) for p in status.asked
                 if p not in status.approved and p not in status.rejected
                 and p not in status.changes_requested],
        rule=_rule_german(policy, len(status.asked)))
    tags = [catalog.directory.communications_office]
    if status.outcome == GateOutcome.ESCALATED:
        tags += [p for p in policy.escalate_to if p not in tags]
    for tag in tags:
        ok = _send(notifier, tag, message)
        _audit(session, occurrence, action="approval.deadline_notice",
               content_hash=status.bundle_hash, channel="email", at=now,
               detail={"tag": tag, "outcome": status.outcome.value, "delivered": ok})


# --- earlier versions --------------------------------------------------------------------


@dataclass(frozen=True)
class PreviousVersion:
    """The latest earlier bundle someone decided on, with its posts by channel."""

    bundle_hash: str
    decided_by: tuple[str, ...]
    posts: dict[str, RenderedPost]


def previous_version(session: Session, *, occurrence: Occurrence,
                     person_id: str | None = None) -> PreviousVersion | None:
    """The earlier version of the posts that was decided on (this person's first), if any."""
    gate = occurrence.gate_bundle_hash
    query = (
        select(ApprovalRequest, ApprovalDecision)
        .join(ApprovalDecision, col(ApprovalDecision.request_id) == col(ApprovalRequest.id))
        .where(ApprovalRequest.occurrence_id == occurrence.id,
               ApprovalRequest.bundle_hash != gate)
        .order_by(col(ApprovalDecision.decided_at).desc(), col(ApprovalDecision.id).desc())
    )
    rows = list(session.exec(query))
    if not rows:
        return None
    mine = [r for r in rows if r[0].person_id == person_id]
    bundle = (mine or rows)[0][0].bundle_hash
    deciders = tuple(dict.fromkeys(r[0].person_id for r in rows if r[0].bundle_hash == bundle))
    hashes: dict[str, str] = {}
    for event in store.audit_trail(session, campaign_id=occurrence.campaign_id):
        if (event.action == "approval.requested" and event.content_hash == bundle
                and event.occurrence_date == occurrence.occurrence_date):
            hashes = dict(event.detail.get("posts") or {})
            break
    posts: dict[str, RenderedPost] = {}
    for row in store.post_history(session, occurrence_id=occurrence.id):
        if hashes.get(row.channel) == row.content_hash:
            posts[row.channel] = row.to_rendered()
    return PreviousVersion(bundle, deciders, posts)


# Words and the white space between them; a line break is a token of its own, so a diff
# never joins two lines and an inserted line break shows where it goes.
_WORD_TOKENS = re.compile(r"\n|[^\S\n]+|\S+")


def word_diff(old: str, new: str) -> list[tuple[str, str]]:
    """Word-level diff of two post texts as (kind, text) runs, kind "same", "removed" or
    "added"; joined, the "same" and "removed" runs give ``old``, the "same" and "added"
    runs ``new`` (white space and line breaks included).

    One changed word is that word removed and its replacement added. A stretch of white
    space left between two changes is folded into them, so "a b" → "x y" reads as one
    change, not as two separated by a kept space.
    """
    a, b = _WORD_TOKENS.findall(old), _WORD_TOKENS.findall(new)
    # [kind, old text, new text], kind "same" or "change"; adjacent changes merge below.
    chunks = [["same" if tag == "equal" else "change", "".join(a[i1:i2]), "".join(b[j1:j2])]
              for tag, i1, i2, j1, j2
              in difflib.SequenceMatcher(a=a, b=b, autojunk=False).get_opcodes()]
    folded: list[list[str]] = []
    for index, chunk in enumerate(chunks):
        between = (chunk[0] == "same" and not chunk[1].strip() and folded
                   and folded[-1][0] == "change" and index + 1 < len(chunks))
        if between:
            folded[-1][1] += chunk[1]
            folded[-1][2] += chunk[2]
        elif chunk[0] == "change" and folded and folded[-1][0] == "change":
            folded[-1][1] += chunk[1]
            folded[-1][2] += chunk[2]
        else:
            folded.append(list(chunk))
    out: list[tuple[str, str]] = []
    for kind, old_part, new_part in folded:
        if kind == "same":
            out.append(("same", old_part))
            continue
        if old_part:
            out.append(("removed", old_part))
        if new_part:
            out.append(("added", new_part))
    return out


# --- what a link's holder is told --------------------------------------------------------


@dataclass(frozen=True)
class ChannelOutcome:
    """One channel of an occurrence as published (or not yet)."""

    channel: str
    publish_at: datetime
    status: str | None  # the publication's status; None: not attempted yet
    url: str | None  # the post on the network (http or https only)
    published_at: datetime | None


@dataclass(frozen=True)
class LinkState:
    """What is true of one approval request and its gate, for the page its holder sees.

    Read only: a deadline that has passed but was not yet applied by the deadline sweeper
    is read as applied (``gate`` is what the sweeper will store), nothing is written.
    """

    request: ApprovalRequest
    gate: GateStatus  # the gate's current question (the latest version of the posts)
    superseded: bool  # the request asked about an earlier version than the gate does
    # This person's request about the gate's version (``request`` itself unless
    # superseded); None when they are not asked about it.
    current_request: ApprovalRequest | None
    deadline_passed: bool
    quorum_met: bool  # enough approvals for the rule (the gate may still be collecting)
    # Quorum met, and approvals still count (and name their signers) until the deadline.
    collecting: bool
    joint: bool  # the post names those who approved (signatories_in_text)
    channels: tuple[ChannelOutcome, ...]

    @property
    def published(self) -> tuple[ChannelOutcome, ...]:
        return tuple(c for c in self.channels if c.status == "published")


def _collects_until_deadline(policy: ApprovalPolicy) -> bool:
    return (policy.mode == ApprovalMode.QUORUM
            and policy.on_timeout == TimeoutAction.PUBLISH_IF_QUORUM)


def _peek(session: Session, catalog: Catalog, occurrence: Occurrence,
          now: datetime) -> GateStatus:
    """The gate's status now, a passed deadline applied, without writing anything."""
    policy = _campaign(catalog, occurrence.campaign_id).approval
    tally = _tally(session, occurrence)
    if occurrence.gate_outcome is not None:
        return _status(catalog, occurrence, tally, GateOutcome(occurrence.gate_outcome),
                       "settled")
    if (occurrence.gate_bundle_hash is None
            or occurrence.bundle_hash != occurrence.gate_bundle_hash):
        return _status(catalog, occurrence, tally, GateOutcome.PENDING, "not asked yet")
    outcome, reason = _rule_outcome(policy, tally)
    if outcome == GateOutcome.PENDING and now >= _deadline_of(catalog, occurrence, tally):
        tally = replace(tally, pending_expired=True)
        outcome, reason = _outcome_after_deadline(policy, tally)
    return _status(catalog, occurrence, tally, outcome, reason)


def _web_url(value: str | None) -> str | None:
    return value if value and value.split(":", 1)[0].lower() in ("http", "https") else None


def _channel_outcome(post: PostRecord, publication: Publication | None) -> ChannelOutcome:
    """One post of the occurrence and its publication, if one was attempted."""
    if publication is None:
        return ChannelOutcome(channel=post.channel, publish_at=post.publish_at, status=None,
                              url=None, published_at=None)
    return ChannelOutcome(channel=post.channel, publish_at=post.publish_at,
                          status=publication.status, url=_web_url(publication.remote_url),
                          published_at=publication.published_at)


def link_state(engine: Engine, catalog: Catalog, target: LinkTarget, *,
               now: datetime | None = None) -> LinkState:
    """What became of ``target``'s request, its gate and its posts (reads only).

    Only for a genuine link bound to its request (:func:`check_link` gives ``target``
    with the errors it raises for such a link): it tells the request's own person.
    """
    now = _now(now)
    with store.session_scope(engine) as session:
        occurrence = _occurrence(session, target.occurrence.id)
        request = session.get(ApprovalRequest, target.request.id, populate_existing=True)
        if request is None:
            raise ApprovalError(f"no approval request {target.request.id}")
        campaign = _campaign(catalog, occurrence.campaign_id)
        gate = _peek(session, catalog, occurrence, now)
        superseded = (occurrence.gate_bundle_hash is not None
                      and request.bundle_hash != occurrence.gate_bundle_hash)
        current = request
        if superseded:
            current = next((r for r in _gate_requests(session, occurrence)
                            if r.person_id == request.person_id), None)
        publications = {publication.channel: publication for publication, _ in
                        store.occurrence_publications(session, occurrence_id=occurrence.id)}
        channels = tuple(
            _channel_outcome(row, publications.get(row.channel))
            for row in sorted(store.current_posts(session, occurrence_id=occurrence.id),
                              key=lambda r: (r.publish_at, r.channel)))
        session.expunge_all()
    quorum_met = bool(gate.asked) and gate.needed > 0 and len(gate.approved) >= gate.needed
    return LinkState(
        request=request, gate=gate, superseded=superseded, current_request=current,
        deadline_passed=now >= gate.deadline, quorum_met=quorum_met,
        collecting=(quorum_met and gate.outcome == GateOutcome.PENDING
                    and _collects_until_deadline(campaign.approval)
                    and now < gate.deadline),
        joint=campaign.signatories_in_text, channels=channels)


# --- Prefect UI summary ------------------------------------------------------------------


def gate_summary_markdown(status: GateStatus, catalog: Catalog,
                          posts: Iterable[RenderedPost | Any]) -> str:
    """Markdown for the Prefect UI: the rule, who signed and who not, and every post.

    Every value from the catalog, the posts or a decision is escaped (:mod:`newsroom.markdown`):
    a post text or a campaign title never forms a link, an image or HTML in the UI.
    """
    rendered = [p.to_rendered() if hasattr(p, "to_rendered") else p for p in posts]
    try:
        title = _campaign(catalog, status.campaign_id).title
    except ApprovalError:
        title = status.campaign_id

    def names(ids: Sequence[str]) -> str:
        return md_text(", ".join(_display(catalog, p) for p in ids) or "–")

    lines = [
        f"# Freigabe / approval: {md_text(title)} ({status.occurrence_date.isoformat()})",
        "",
        f"- **Outcome:** {md_text(status.outcome.value)} – {md_text(status.reason)}",
        f"- **Rule:** mode {md_text(status.mode)}, {status.needed} approval(s) needed "
        f"of {len(status.asked)} asked",
        f"- **Freigaben / approvals:** {len(status.approved)} von / of {status.needed} "
        f"nötigen / needed ({len(status.asked)} angefragt / asked)",
        f"- **Deadline:** {md_text(local_when(status.deadline))} "
        f"({md_text(status.deadline.isoformat())})",
        f"- **Approved / freigegeben:** {names(status.approved)}",
        f"- **Rejected / abgelehnt:** {names(status.rejected)}",
        f"- **Changes requested / Änderungen erbeten:** {names(status.changes_requested)}",
        f"- **Pending / ausstehend:** {names(status.pending)}",
        f"- **Not signed / nicht unterzeichnet:** "
        f"{names([p for p in status.asked if p not in status.approved])}",
    ]
    if status.decided_by_admin:
        lines.append(f"- **Admin decision by:** "
                     f"{md_text(_display(catalog, status.decided_by_admin))}")
    lines += [f"- **Bundle:** {md_text(status.bundle_hash[:16])}", "",
              "## Entscheidungen / decisions", ""]
    if status.decisions:
        lines += ["| Zeit / time | Wer / who | Entscheidung / decision | Kommentar / comment "
                  "| über / via |", "|---|---|---|---|---|"]
        for decision in status.decisions:
            who = _display(catalog, decision.person_id) + (
                " (Admin)" if decision.by_admin else "")
            lines.append(
                f"| {md_text(local_when(decision.decided_at))} | {md_text(who)} | "
                f"{md_text(_DECISION_WORDS.get(decision.decision, decision.decision))} | "
                f"{md_text(decision.comment, limit=500) or '–'} | {md_text(decision.via)} |")
    else:
        lines.append("Noch keine / none yet.")
    lines += ["", "## Posts"]
    for post in sorted(rendered, key=lambda p: (p.publish_at, p.channel)):
        name = channel_label(catalog, post.channel)
        lines += ["", f"### {md_text(name)} ({md_text(post.channel)}) – "
                      f"{md_text(local_when(post.publish_at))}", ""]
        lines += md_quote(post.text)
        for item in post.media:
            lines.append(f"\n*Bild:* {md_text(item.alt)}")
    return "\n".join(lines) + "\n"


def gate_summary_of(engine: Engine, catalog: Catalog, status: GateStatus) -> str:
    """:func:`gate_summary_markdown` with the posts the gate asks about, read from the store
    (for a writer outside the run, e.g. the approval page after a signature)."""
    with store.session_scope(engine) as session:
        posts = _gate_posts(session, _occurrence(session, status.occurrence_id))
    return gate_summary_markdown(status, catalog, posts)
