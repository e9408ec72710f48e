"""Deciding the gate: a person through their link (the approval page), an admin through
the Prefect UI form or the command line."""

from __future__ import annotations

import logging
from datetime import datetime
from typing import Any

from sqlalchemy.engine import Engine

from newsroom import store
from newsroom.catalog.catalog import Catalog
from newsroom.catalog.roles import NotPermitted, Permission, authorize
from newsroom.errors import StoreError
from newsroom.signing import Signer
from newsroom.store import DecisionVia, stored_id

from .errors import ApprovalError, InvalidDecision, LinkAlreadyUsed
from .gate import audit, evaluate, evaluate_gate, occurrence_of
from .links import check_link
from .policy import ADMIN_PREFIX, utc_now
from .status import DECISION_OUTCOMES, GateOutcome, GateStatus

logger = logging.getLogger("newsroom.approval")

# The longest comment the approval page's form may send.
MAX_COMMENT = 2000


def decide(engine: Engine, catalog: Catalog, *, token: str, decision: str, comment: str,
           signer: Signer, now: datetime | None = None) -> GateStatus:
    """Record the decision a person made on the approval page; the gate's new status."""
    now = utc_now(now)
    if decision not in DECISION_OUTCOMES:
        raise InvalidDecision(f"unknown decision {decision[:40]!r}")
    if not isinstance(comment, str) or len(comment) > MAX_COMMENT:
        raise InvalidDecision(f"the comment is longer than {MAX_COMMENT} characters")
    comment = comment.replace("\x00", "").strip()
    # Apply a passed deadline first, so a late click meets an expired request.
    target = check_link(engine, signer, token, now=now, require_pending=False)
    evaluate_gate(engine, catalog, occurrence_id=stored_id(target.occurrence), now=now)
    target = check_link(engine, signer, token, now=now)
    request = target.request
    with store.session_scope(engine) as session:
        try:
            store.record_decision(session, request_id=stored_id(request), decision=decision,
                                  decided_by=request.person_id, via=DecisionVia.LINK.value,
                                  bundle_hash=request.bundle_hash, comment=comment,
                                  decided_at=now)
        except StoreError:
            session.rollback()
            # Lost a race (a second click, a re-render): say which.
            check_link(engine, signer, token, now=now)
            raise LinkAlreadyUsed(f"request {request.id} could not be decided") from None
        occurrence = occurrence_of(session, request.occurrence_id)
        audit(session, occurrence, action="approval.decided", actor=request.person_id,
              content_hash=request.bundle_hash, at=now,
              detail={"decision": decision, "comment": comment, "request_id": request.id,
                      "via": DecisionVia.LINK.value, "token_nonce": target.claims.nonce,
                      "step": request.step})
        return evaluate(session, catalog, request.occurrence_id, now)[0]


def admin_decision(engine: Engine, catalog: Catalog, *, occurrence_id: int, decision: str,
                   comment: str, admin: str, via: str = "prefect_ui",
                   now: datetime | None = None, refusal_key: str | None = None,
                   decision_key: str | None = None) -> GateStatus:
    """An admin decides the step an open or escalated gate stands at: approve (the
    chain goes on to its next step; the last step's approval settles the gate), reject
    or request_changes (they settle it).

    ``admin`` must name a person of the registry whose roles allow deciding a gate
    (:func:`newsroom.catalog.roles.authorize`); anyone else is refused with
    :class:`~newsroom.catalog.roles.NotPermitted`, and the refusal is audited
    (``approval.admin_refused``; once per ``refusal_key`` when given, so a run that
    replays the same input does not record it twice). The decision is recorded under
    the person's id (``admin:<id>``).
    """
    now = utc_now(now)
    if decision not in DECISION_OUTCOMES:
        raise ApprovalError(f"decision must be one of {', '.join(DECISION_OUTCOMES)}, "
                            f"not {decision!r}")
    via = DecisionVia(via).value
    try:
        person = authorize(catalog.index, admin, Permission.DECIDE_GATE)
    except NotPermitted as exc:
        with store.session_scope(engine) as session:
            occurrence = occurrence_of(session, occurrence_id)
            event: dict[str, Any]
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
        status, _ = evaluate(session, catalog, occurrence_id, now)
        if decision_key and store.audit_once_recorded(session, once_key=decision_key):
            return status
        occurrence = occurrence_of(session, occurrence_id)
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
            bundle_hash=occurrence.gate_bundle_hash, deadline=status.deadline,
            step=status.step)
        step = status.current_step
        decided: dict[str, Any] = dict(
            campaign_id=occurrence.campaign_id, occurrence_date=occurrence.occurrence_date,
            actor=decided_by, action="approval.admin_decided",
            content_hash=occurrence.gate_bundle_hash, at=now,
            detail={"decision": decision, "comment": comment, "via": via,
                    "named": " ".join(admin.split())[:100],
                    "previous": status.outcome.value, "step": status.step,
                    "step_name": step.name if step else None})
        if decision_key:
            # Claimed before the decision is recorded: a crash between the two loses the
            # input (the run waits, the admin decides again), never applies it twice.
            if store.record_audit_once(session, once_key=decision_key, **decided) is None:
                return status
        else:
            store.record_audit(session, **decided)
        store.record_decision(session, request_id=stored_id(request), decision=decision,
                              decided_by=decided_by, via=via,
                              bundle_hash=occurrence.gate_bundle_hash, comment=comment,
                              decided_at=now)
        outcome = DECISION_OUTCOMES[decision]
        if outcome == GateOutcome.APPROVED and status.step + 1 < len(status.steps):
            # The admin approved one step of the chain: the next one is asked.
            store.reopen_escalated_gate(session, occurrence_id=occurrence_id,
                                        bundle_hash=occurrence.gate_bundle_hash)
            return evaluate(session, catalog, occurrence_id, now)[0]
        store.settle_gate(session, occurrence_id=occurrence_id,
                          bundle_hash=occurrence.gate_bundle_hash, outcome=outcome.value, at=now)
        audit(session, occurrence, action="approval.settled", actor=decided_by,
              content_hash=occurrence.gate_bundle_hash, at=now,
              detail={"outcome": outcome.value, "reason": f"admin decision via {via}",
                      "approved": list(status.approved), "asked": list(status.asked),
                      "step": status.step})
        return evaluate(session, catalog, occurrence_id, now)[0]
