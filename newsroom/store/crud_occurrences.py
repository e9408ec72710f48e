"""Occurrences (one campaign on one date, or one on-demand trigger) and their approval gate:
the bundle the gate asks about, its outcome, the flow run waiting at it."""

from __future__ import annotations

from datetime import UTC, date, datetime

from sqlmodel import Session, col, select

from newsroom.errors import StoreError
from newsroom.store.crud_common import check_choice, get_row, insert_or_get, require_aware
from newsroom.store.models import GateResult, Occurrence, OccurrenceStatus, utcnow


def _find_occurrence(session: Session, campaign_id: str, occurrence_date: date,
                     trigger_key: str = ""):
    query = select(Occurrence).where(
        Occurrence.campaign_id == campaign_id, Occurrence.occurrence_date == occurrence_date,
        Occurrence.trigger_key == trigger_key,
    )
    return session.exec(query.execution_options(populate_existing=True)).first()


def get_occurrence(
    session: Session, *, campaign_id: str, occurrence_date: date, trigger_key: str = ""
) -> Occurrence | None:
    """The dated occurrence (``trigger_key`` "": not an on-demand trigger) of a campaign."""
    return _find_occurrence(session, campaign_id, occurrence_date, trigger_key)


def get_or_create_occurrence(
    session: Session, *, campaign_id: str, occurrence_date: date, first_publish_at: datetime,
    trigger_key: str = "",
) -> Occurrence:
    """The occurrence of the campaign on that date, created (status "planned") if new.

    When the schedule moved the first publication time of an occurrence that has not
    been published yet, ``first_publish_at`` is updated. ``trigger_key`` tells apart
    on-demand (crisis) triggers of one campaign on one day.
    """
    require_aware(first_publish_at, "first_publish_at")
    occurrence = _find_occurrence(session, campaign_id, occurrence_date, trigger_key)
    if occurrence is None:
        occurrence, created = insert_or_get(
            session,
            Occurrence(
                campaign_id=campaign_id,
                occurrence_date=occurrence_date,
                first_publish_at=first_publish_at,
                trigger_key=trigger_key,
            ),
            lambda: _find_occurrence(session, campaign_id, occurrence_date, trigger_key),
        )
        if created:
            session.commit()
            return occurrence
    published = {OccurrenceStatus.PUBLISHED, OccurrenceStatus.PARTIALLY_PUBLISHED}
    if occurrence.first_publish_at != first_publish_at and occurrence.status not in published:
        occurrence.first_publish_at = first_publish_at
        session.add(occurrence)
        session.commit()
    return occurrence


def set_occurrence_status(session: Session, *, occurrence_id: int, status: str) -> Occurrence:
    status = check_choice(status, OccurrenceStatus, "occurrence status")
    occurrence = get_row(session, Occurrence, occurrence_id)
    if occurrence.status != status:
        occurrence.status = status
        session.add(occurrence)
        session.commit()
    return occurrence


def move_occurrence(session: Session, *, occurrence_id: int, channels: list[str],
                    to: datetime, status: str) -> Occurrence:
    """Move the occurrence's posts on ``channels`` to ``to`` (the office's decision after a
    crisis hold) and set its status; the next rendering applies the time."""
    require_aware(to, "to")
    status = check_choice(status, OccurrenceStatus, "occurrence status")
    occurrence = get_row(session, Occurrence, occurrence_id, lock=True)
    moved = dict(occurrence.moved_to or {})
    moved.update(dict.fromkeys(channels, to.astimezone(UTC).isoformat()))
    occurrence.moved_to = moved
    occurrence.first_publish_at = to  # the gate's deadline counts from the new time
    occurrence.status = status
    session.add(occurrence)
    session.commit()
    return occurrence


def set_flow_run(session: Session, *, occurrence_id: int, flow_run_id: str | None) -> Occurrence:
    """Remember the Prefect flow run (its id as text) that waits at the occurrence's gate."""
    occurrence = get_row(session, Occurrence, occurrence_id, lock=True)
    if occurrence.flow_run_id != flow_run_id:
        occurrence.flow_run_id = flow_run_id
        session.add(occurrence)
        session.commit()
    return occurrence


_GATE_STATUS = {
    GateResult.APPROVED: OccurrenceStatus.APPROVED,
    GateResult.REJECTED: OccurrenceStatus.REJECTED,
    GateResult.CHANGES_REQUESTED: OccurrenceStatus.CHANGES_REQUESTED,
    GateResult.CANCELLED: OccurrenceStatus.CANCELLED,
}
# The gate never moves an occurrence out of these states.
_GATE_KEEPS = {OccurrenceStatus.PUBLISHED, OccurrenceStatus.PARTIALLY_PUBLISHED,
               OccurrenceStatus.SKIPPED, OccurrenceStatus.HELD}


def set_gate_bundle(
    session: Session, *, occurrence_id: int, bundle_hash: str
) -> tuple[Occurrence, bool]:
    """Point the occurrence's approval gate at ``bundle_hash``; ``changed`` when it moved.

    A new bundle is a new question: the outcome of the old one is cleared and the
    occurrence awaits approval again.
    """
    occurrence = get_row(session, Occurrence, occurrence_id, lock=True)
    if occurrence.gate_bundle_hash == bundle_hash:
        return occurrence, False
    occurrence.gate_bundle_hash = bundle_hash
    occurrence.gate_outcome = None
    occurrence.gate_settled_at = None
    occurrence.escalated_at = None
    if occurrence.status not in _GATE_KEEPS:
        occurrence.status = OccurrenceStatus.AWAITING_APPROVAL.value
    session.add(occurrence)
    session.commit()
    return occurrence, True


def settle_gate(
    session: Session,
    *,
    occurrence_id: int,
    bundle_hash: str,
    outcome: str,
    at: datetime | None = None,
) -> tuple[Occurrence, bool]:
    """Store what the gate came to; ``changed`` is False when nothing was written.

    Only an open (or escalated) gate takes an outcome; a final outcome never changes.
    ``escalated`` is recorded with ``escalated_at`` and leaves the gate open.
    """
    outcome = check_choice(outcome, GateResult, "gate outcome")
    at = at or utcnow()
    require_aware(at, "at")
    occurrence = get_row(session, Occurrence, occurrence_id, lock=True)
    if occurrence.gate_bundle_hash != bundle_hash:
        raise StoreError(
            f"the gate of occurrence {occurrence_id} asks about bundle "
            f"{(occurrence.gate_bundle_hash or '-')[:12]}, not {bundle_hash[:12]}"
        )
    if occurrence.gate_outcome not in (None, GateResult.ESCALATED.value):
        return occurrence, False
    if outcome == GateResult.ESCALATED:
        if occurrence.gate_outcome == GateResult.ESCALATED.value:
            return occurrence, False
        occurrence.escalated_at = at
    else:
        occurrence.gate_settled_at = at
        if occurrence.status not in _GATE_KEEPS:
            occurrence.status = _GATE_STATUS[GateResult(outcome)].value
    occurrence.gate_outcome = outcome
    session.add(occurrence)
    session.commit()
    return occurrence, True


def reopen_escalated_gate(session: Session, *, occurrence_id: int, bundle_hash: str) -> bool:
    """An escalated gate open again (an admin approved the step that escalated, and the
    chain goes on to its next step); False when it was not escalated on this bundle."""
    occurrence = get_row(session, Occurrence, occurrence_id, lock=True)
    if (occurrence.gate_bundle_hash != bundle_hash
            or occurrence.gate_outcome != GateResult.ESCALATED.value):
        return False
    occurrence.gate_outcome = None
    occurrence.escalated_at = None
    session.add(occurrence)
    session.commit()
    return True


def open_gates(session: Session) -> list[Occurrence]:
    """Occurrences whose approval gate is open or escalated (waiting for someone)."""
    query = (
        select(Occurrence)
        .where(
            col(Occurrence.gate_bundle_hash).is_not(None),
            (col(Occurrence.gate_outcome).is_(None))
            | (Occurrence.gate_outcome == GateResult.ESCALATED.value),
        )
        .order_by(col(Occurrence.first_publish_at), col(Occurrence.id))
    )
    return list(session.exec(query.execution_options(populate_existing=True)))


def waiting_flow_runs(session: Session) -> list[tuple[int, str]]:
    """(occurrence id, flow run id) of occurrences whose run may wait at the gate."""
    done = {OccurrenceStatus.PUBLISHED.value, OccurrenceStatus.PARTIALLY_PUBLISHED.value,
            OccurrenceStatus.SKIPPED.value}
    query = select(Occurrence).where(col(Occurrence.flow_run_id).is_not(None),
                                     col(Occurrence.status).not_in(done))
    return [(o.id, o.flow_run_id) for o in session.exec(query) if o.id and o.flow_run_id]
