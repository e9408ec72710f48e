"""The gate's deadline, swept: reminders before it; expiry, cancellation or escalation
at it, and the communications office (and whom the policy escalates to) told."""

from __future__ import annotations

import logging
from collections.abc import Sequence
from datetime import datetime, timedelta
from typing import Any

from sqlalchemy.engine import Engine
from sqlmodel import Session

from newsroom import store
from newsroom.approval_messages import deadline_message, reminder_message
from newsroom.catalog.catalog import Catalog
from newsroom.signing import Signer
from newsroom.store import ApprovalStatus, Occurrence, stored_id
from newsroom.timeutil import Duration, before, parse_duration

from .errors import ApprovalError
from .gate import audit, evaluate, occurrence_of
from .links import approval_link
from .mail import gate_now, message_data, notify_approvers, send_message
from .policy import campaign_of, display_name, rule_german, utc_now
from .status import GateOutcome, GateStatus

logger = logging.getLogger("newsroom.approval")

# Elapsed hours (see timeutil.before): 24 h and 2 h before the deadline, across DST too.
DEFAULT_REMINDERS = (parse_duration("24h"), parse_duration("2h"))
# A request not mailed this long after it was made was lost (the process that made it
# stopped before its mail went out, a notifier failed): the sweeper mails it.
UNSENT_AFTER = timedelta(minutes=1)


def process_deadlines(engine: Engine, catalog: Catalog, *, notifier: Any, signer: Signer,
                      base_url: str, now: datetime | None = None,
                      reminders: Sequence[Duration] = DEFAULT_REMINDERS) -> list[GateStatus]:
    """Reminders before the deadline; expiry, cancellation or escalation at it.

    Returns the gates this call settled or escalated (their flow runs can resume).
    """
    now = utc_now(now)
    changed_gates: list[GateStatus] = []
    with store.session_scope(engine) as session:
        gate_ids = [stored_id(o) for o in store.open_gates(session)]
    for occurrence_id in gate_ids:
        try:
            with store.session_scope(engine) as session:
                occurrence = occurrence_of(session, occurrence_id)
                if occurrence.gate_outcome is not None:
                    continue
                step = _remind(session, catalog, occurrence, notifier, signer, base_url, now,
                               reminders)
                status, changed = evaluate(session, catalog, occurrence_id, now)
            if not status.settled:
                # A step this sweep opened (the one before met its quorum at its deadline)
                # is mailed now; a request whose mail was lost, a minute after it was made.
                notify_approvers(engine, catalog, occurrence_id=occurrence_id,
                                 notifier=notifier, signer=signer, base_url=base_url, now=now,
                                 asked_before=None if status.step > step
                                 else now - UNSENT_AFTER)
            with store.session_scope(engine) as session:
                occurrence = occurrence_of(session, occurrence_id)
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
            signer: Signer, base_url: str, now: datetime, reminders: Sequence[Duration]) -> int:
    """Remind the people of the gate's current step (each step has its deadline); the
    step the gate stands at."""
    if occurrence.bundle_hash != occurrence.gate_bundle_hash:
        return 0
    status, requests = gate_now(session, catalog, occurrence, now)
    for request in requests:
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
                message_data(session, catalog, occurrence, request, link, status))
            if not send_message(notifier, request.person_id, message):
                continue
            audit(session, occurrence, action="approval.reminded",
                  content_hash=request.bundle_hash, channel="email", at=now,
                  detail={"person": request.person_id, "request_id": request.id,
                          "reminder": len(due), "step": request.step})
        store.set_reminders_sent(session, request_id=stored_id(request), count=len(due))
    return status.step


def _tell_office(session: Session, catalog: Catalog, occurrence: Occurrence,
                 status: GateStatus, notifier: Any, now: datetime) -> None:
    campaign = campaign_of(catalog, occurrence.campaign_id)
    step = campaign.approval.chain[status.step]
    chain = len(campaign.approval.chain)
    title = campaign.title + (f" (Stufe {status.step + 1} von {chain}: "
                              f"{status.steps[status.step].name})" if chain > 1 else "")
    message = deadline_message(
        title=title, occurrence_date=occurrence.occurrence_date,
        outcome=status.outcome.value, deadline=status.deadline,
        approved=[display_name(catalog, p) for p in status.approved],
        declined=[display_name(catalog, p)
                  for p in (*status.rejected, *status.changes_requested)],
        missing=[display_name(catalog, p) for p in status.asked
                 if p not in status.approved and p not in status.rejected
                 and p not in status.changes_requested],
        rule=rule_german(step, len(status.asked)))
    tags = [catalog.directory.communications_office]
    if status.outcome == GateOutcome.ESCALATED:
        tags += [p for p in step.escalate_to or () if p not in tags]
    for tag in tags:
        ok = send_message(notifier, tag, message)
        audit(session, occurrence, action="approval.deadline_notice",
              content_hash=status.bundle_hash, channel="email", at=now,
              detail={"tag": tag, "outcome": status.outcome.value, "delivered": ok})
