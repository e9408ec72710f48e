"""Reading and writing Newsroom's records.

Every function takes the :class:`~sqlmodel.Session` first and everything else as keyword
arguments. Functions that write commit before they return: each is one durable step
(a reservation must be on disk before the network call it guards). Inserts that can race
run in a SAVEPOINT and rely on the database's UNIQUE constraints, never on a prior SELECT.
"""

from __future__ import annotations

import hashlib
import json
import secrets
from collections.abc import Callable, Iterable
from datetime import UTC, date, datetime
from typing import Any, TypeVar

from sqlalchemy.exc import IntegrityError
from sqlmodel import Session, SQLModel, col, select

from newsroom.errors import AlreadyReserved, StoreError
from newsroom.posts import RenderedPost, bundle_hash
from newsroom.store.models import (
    ApprovalDecision,
    ApprovalRequest,
    ApprovalStatus,
    AuditEvent,
    CampaignRecord,
    Decision,
    DecisionVia,
    GateResult,
    Occurrence,
    OccurrenceStatus,
    PostRecord,
    Publication,
    PublicationStatus,
    utcnow,
)

T = TypeVar("T", bound=SQLModel)

_DECISION_STATUS = {
    Decision.APPROVE: ApprovalStatus.APPROVED,
    Decision.REJECT: ApprovalStatus.REJECTED,
    Decision.REQUEST_CHANGES: ApprovalStatus.CHANGES_REQUESTED,
}
# A publication in one of these states is settled: nothing may change it any more.
_FINAL_PUBLICATION = {PublicationStatus.PUBLISHED, PublicationStatus.SKIPPED}


# --- helpers -----------------------------------------------------------------------------


def _require_aware(value: datetime, name: str) -> None:
    if value.tzinfo is None or value.utcoffset() is None:
        raise StoreError(f"{name} must be timezone-aware, got naive {value.isoformat()}")


def _check_choice(value: str, allowed: type, name: str) -> str:
    try:
        return allowed(value).value
    except ValueError:
        choices = ", ".join(v.value for v in allowed)
        raise StoreError(f"{name} {value!r} is not one of: {choices}") from None


def _get(session: Session, model: type[T], ident: Any, *, lock: bool = False) -> T:
    """Load a row by primary key; ``lock`` re-reads it with SELECT ... FOR UPDATE.

    (SQLite has no row locks; there every transaction holds the write lock anyway.)
    """
    if lock:
        row = session.get(model, ident, with_for_update=True, populate_existing=True)
    else:
        row = session.get(model, ident)
    if row is None:
        raise StoreError(f"no {model.__name__} with id {ident!r}")
    return row


def _insert_or_get(session: Session, row: T, find: Callable[[], T | None]) -> tuple[T, bool]:
    """Insert ``row`` in a SAVEPOINT; when a UNIQUE constraint says it exists, return that.

    Returns ``(row, created)``. Does not commit.
    """
    try:
        with session.begin_nested():
            session.add(row)
    except IntegrityError:
        existing = find()
        if existing is None:
            raise
        return existing, False
    return row, True


def definition_hash(definition: dict) -> str:
    """SHA-256 of the canonical JSON of a campaign definition."""
    try:
        canonical = json.dumps(
            definition, sort_keys=True, ensure_ascii=False, separators=(",", ":"), allow_nan=False
        )
    except (TypeError, ValueError) as exc:
        raise StoreError(
            f"campaign definition is not plain JSON ({exc}); "
            "pass e.g. model.model_dump(mode='json')"
        ) from None
    return hashlib.sha256(canonical.encode("utf-8")).hexdigest()


# --- campaigns ---------------------------------------------------------------------------


def get_campaign(session: Session, *, campaign_id: str) -> CampaignRecord | None:
    return session.get(CampaignRecord, campaign_id)


def upsert_campaign(
    session: Session,
    *,
    campaign_id: str,
    title: str,
    kind: str,
    topic: str,
    source_file: str,
    definition: dict,
) -> tuple[CampaignRecord, bool]:
    """Store the campaign's current definition. ``changed`` is False when nothing differs.

    A campaign that was marked removed and comes back counts as changed.
    """
    digest = definition_hash(definition)
    definition = json.loads(json.dumps(definition))  # a private copy, as stored
    values = {
        "title": title,
        "kind": kind,
        "topic": topic,
        "source_file": source_file,
        "definition_hash": digest,
    }
    record = session.get(CampaignRecord, campaign_id)
    if record is None:
        record, created = _insert_or_get(
            session,
            CampaignRecord(id=campaign_id, definition=definition, **values),
            lambda: session.get(CampaignRecord, campaign_id, populate_existing=True),
        )
        if created:
            session.commit()
            return record, True
    changed = record.removed_at is not None or any(
        getattr(record, name) != value for name, value in values.items()
    )
    if changed:
        for name, value in values.items():
            setattr(record, name, value)
        record.definition = definition
        record.removed_at = None
        record.updated_at = utcnow()
        session.add(record)
        session.commit()
    return record, changed


def mark_campaign_removed(
    session: Session, *, campaign_id: str, at: datetime | None = None
) -> CampaignRecord:
    """Note that the campaign left the catalog (its history stays). Idempotent."""
    record = _get(session, CampaignRecord, campaign_id)
    if record.removed_at is None:
        at = at or utcnow()
        _require_aware(at, "at")
        record.removed_at = at
        record.updated_at = at
        session.add(record)
        session.commit()
    return record


def active_campaigns(session: Session) -> list[CampaignRecord]:
    query = select(CampaignRecord).where(col(CampaignRecord.removed_at).is_(None))
    return list(session.exec(query.order_by(col(CampaignRecord.id))))


# --- occurrences -------------------------------------------------------------------------


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
    _require_aware(first_publish_at, "first_publish_at")
    occurrence = _find_occurrence(session, campaign_id, occurrence_date, trigger_key)
    if occurrence is None:
        occurrence, created = _insert_or_get(
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
    status = _check_choice(status, OccurrenceStatus, "occurrence status")
    occurrence = _get(session, Occurrence, occurrence_id)
    if occurrence.status != status:
        occurrence.status = status
        session.add(occurrence)
        session.commit()
    return occurrence


def move_occurrence(session: Session, *, occurrence_id: int, channels: list[str],
                    to: datetime, status: str) -> Occurrence:
    """Move the occurrence's posts on ``channels`` to ``to`` (the office's decision after a
    crisis hold) and set its status; the next rendering applies the time."""
    _require_aware(to, "to")
    status = _check_choice(status, OccurrenceStatus, "occurrence status")
    occurrence = _get(session, Occurrence, occurrence_id, lock=True)
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
    occurrence = _get(session, Occurrence, occurrence_id, lock=True)
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
    occurrence = _get(session, Occurrence, occurrence_id, lock=True)
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
    outcome = _check_choice(outcome, GateResult, "gate outcome")
    at = at or utcnow()
    _require_aware(at, "at")
    occurrence = _get(session, Occurrence, occurrence_id, lock=True)
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


# --- rendered posts ----------------------------------------------------------------------


def current_posts(session: Session, *, occurrence_id: int) -> list[PostRecord]:
    """The posts of the occurrence that are not superseded, ordered by channel."""
    query = (
        select(PostRecord)
        .where(PostRecord.occurrence_id == occurrence_id, col(PostRecord.superseded_at).is_(None))
        .order_by(col(PostRecord.channel))
    )
    return list(session.exec(query))


def post_history(session: Session, *, occurrence_id: int) -> list[PostRecord]:
    """All posts ever rendered for the occurrence, oldest first."""
    query = (
        select(PostRecord)
        .where(PostRecord.occurrence_id == occurrence_id)
        .order_by(col(PostRecord.created_at), col(PostRecord.id))
    )
    return list(session.exec(query))


def store_rendered_posts(
    session: Session, *, occurrence_id: int, posts: list[RenderedPost]
) -> list[PostRecord]:
    """Make ``posts`` the current posts of the occurrence; returns the current rows.

    Idempotent: posts whose content hash is unchanged keep their row. Changed content
    gets a new row and the old one is marked superseded (content seen before is revived);
    channels missing from ``posts`` are superseded. ``occurrence.bundle_hash`` follows.
    """
    # The row lock serialises concurrent renders of one occurrence.
    occurrence = _get(session, Occurrence, occurrence_id, lock=True)
    by_channel: dict[str, RenderedPost] = {}
    for post in posts:
        if post.campaign_id != occurrence.campaign_id or post.occurrence != (
            occurrence.occurrence_date
        ):
            raise StoreError(
                f"post {post.post_key} does not belong to occurrence "
                f"{occurrence.campaign_id}/{occurrence.occurrence_date.isoformat()}"
            )
        if post.channel in by_channel:
            raise StoreError(f"two posts for channel {post.channel!r} in {post.post_key}")
        _require_aware(post.publish_at, f"publish_at of {post.post_key}")
        by_channel[post.channel] = post

    history = list(
        session.exec(select(PostRecord).where(PostRecord.occurrence_id == occurrence_id))
    )
    current = {row.channel: row for row in history if row.superseded_at is None}
    known = {(row.channel, row.content_hash): row for row in history}
    now = utcnow()
    dirty = False

    for channel, row in current.items():
        wanted = by_channel.get(channel)
        if wanted is None or wanted.content_hash != row.content_hash:
            row.superseded_at = now
            session.add(row)
            dirty = True
    for channel, post in by_channel.items():
        digest = post.content_hash
        row = known.get((channel, digest))
        if row is None:
            session.add(
                PostRecord(
                    occurrence_id=occurrence_id,
                    channel=channel,
                    channel_type=post.channel_type,
                    publish_at=post.publish_at,
                    text=post.text,
                    payload=post.canonical(),
                    content_hash=digest,
                    created_at=now,
                )
            )
            dirty = True
        elif row.superseded_at is not None:  # back to content rendered before
            row.superseded_at = None
            session.add(row)
            dirty = True

    new_bundle = bundle_hash(list(by_channel.values()))
    if occurrence.bundle_hash != new_bundle:
        occurrence.bundle_hash = new_bundle
        session.add(occurrence)
        dirty = True
    if dirty:
        try:
            session.commit()
        except IntegrityError as exc:
            session.rollback()
            raise StoreError(
                f"posts of occurrence {occurrence_id} were changed concurrently; render again"
            ) from exc
    return current_posts(session, occurrence_id=occurrence_id)


# --- approvals ---------------------------------------------------------------------------


def _find_request(session: Session, occurrence_id: int, person_id: str, bundle: str):
    query = select(ApprovalRequest).where(
        ApprovalRequest.occurrence_id == occurrence_id,
        ApprovalRequest.person_id == person_id,
        ApprovalRequest.bundle_hash == bundle,
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
) -> ApprovalRequest:
    """Ask ``person_id`` to approve the occurrence's current bundle. Idempotent.

    Asking again for the same bundle returns the existing request (and its nonce).
    Refused when ``bundle_hash`` is not the occurrence's current bundle.
    """
    _require_aware(deadline, "deadline")
    occurrence = _get(session, Occurrence, occurrence_id)
    if occurrence.bundle_hash != bundle_hash:
        raise StoreError(
            f"bundle {bundle_hash[:12]} is not the current content of occurrence "
            f"{occurrence.campaign_id}/{occurrence.occurrence_date.isoformat()}; render again"
        )
    return ensure_approval_request(
        session, occurrence_id=occurrence_id, person_id=person_id, bundle_hash=bundle_hash,
        deadline=deadline, token_nonce=token_nonce)[0]


def ensure_approval_request(
    session: Session,
    *,
    occurrence_id: int,
    person_id: str,
    bundle_hash: str,
    deadline: datetime,
    token_nonce: str | None = None,
) -> tuple[ApprovalRequest, bool]:
    """Like :func:`create_approval_request`; also says whether the request is new."""
    _require_aware(deadline, "deadline")
    occurrence = _get(session, Occurrence, occurrence_id)
    if occurrence.bundle_hash != bundle_hash:
        raise StoreError(
            f"bundle {bundle_hash[:12]} is not the current content of occurrence "
            f"{occurrence.campaign_id}/{occurrence.occurrence_date.isoformat()}; render again"
        )
    existing = _find_request(session, occurrence_id, person_id, bundle_hash)
    if existing is not None:
        return existing, False
    request, created = _insert_or_get(
        session,
        ApprovalRequest(
            occurrence_id=occurrence_id,
            person_id=person_id,
            bundle_hash=bundle_hash,
            deadline=deadline,
            token_nonce=token_nonce or secrets.token_urlsafe(32),
        ),
        lambda: _find_request(session, occurrence_id, person_id, bundle_hash),
    )
    session.commit()
    return request, created


def mark_request_notified(
    session: Session, *, request_id: int, at: datetime | None = None
) -> ApprovalRequest:
    """Note that the approval message for this request went out (first time only)."""
    at = at or utcnow()
    _require_aware(at, "at")
    request = _get(session, ApprovalRequest, request_id, lock=True)
    if request.notified_at is None:
        request.notified_at = at
        session.add(request)
        session.commit()
    return request


def set_reminders_sent(session: Session, *, request_id: int, count: int) -> ApprovalRequest:
    """Raise the request's reminder count to ``count`` (it never goes down)."""
    request = _get(session, ApprovalRequest, request_id, lock=True)
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
    decision = _check_choice(decision, Decision, "decision")
    via = _check_choice(via, DecisionVia, "via")
    decided_at = decided_at or utcnow()
    _require_aware(decided_at, "decided_at")
    # Lock order everywhere: occurrence, then its requests.
    occurrence_id = _get(session, ApprovalRequest, request_id).occurrence_id
    occurrence = _get(session, Occurrence, occurrence_id, lock=True)
    request = _get(session, ApprovalRequest, request_id, lock=True)
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
    occurrence = _get(session, Occurrence, occurrence_id, lock=True)
    query = select(ApprovalRequest).where(
        ApprovalRequest.occurrence_id == occurrence_id,
        ApprovalRequest.status == ApprovalStatus.PENDING.value,
    )
    stale = [r for r in session.exec(query) if r.bundle_hash != occurrence.bundle_hash]
    return _void(session, stale, ApprovalStatus.VOID.value)


def expire_overdue_requests(
    session: Session, *, now: datetime | None = None, occurrence_id: int | None = None
) -> list[ApprovalRequest]:
    """Mark pending requests whose deadline has passed as expired (of one occurrence)."""
    now = now or utcnow()
    _require_aware(now, "now")
    query = select(ApprovalRequest).where(
        ApprovalRequest.status == ApprovalStatus.PENDING.value,
        col(ApprovalRequest.deadline) <= now,
    )
    if occurrence_id is not None:
        query = query.where(ApprovalRequest.occurrence_id == occurrence_id)
    return _void(session, session.exec(query).all(), ApprovalStatus.EXPIRED.value)


# --- publications ------------------------------------------------------------------------


def get_publication(session: Session, *, post_id: int, channel: str) -> Publication | None:
    query = select(Publication).where(
        Publication.post_id == post_id, Publication.channel == channel
    )
    return session.exec(query.execution_options(populate_existing=True)).first()


def get_publication_by_key(session: Session, *, idempotency_key: str) -> Publication | None:
    query = select(Publication).where(Publication.idempotency_key == idempotency_key)
    return session.exec(query.execution_options(populate_existing=True)).first()


def occurrence_publications(
    session: Session, *, occurrence_id: int
) -> list[tuple[Publication, PostRecord]]:
    """Every publication of the occurrence (of any rendering of its posts), with its post."""
    query = (
        select(Publication, PostRecord)
        .join(PostRecord, col(PostRecord.id) == col(Publication.post_id))
        .where(PostRecord.occurrence_id == occurrence_id)
        .order_by(col(Publication.id))
    )
    return [(publication, post) for publication, post in
            session.exec(query.execution_options(populate_existing=True))]


def reserve_publication(
    session: Session, *, post_id: int, channel: str, idempotency_key: str
) -> Publication:
    """Claim the right to publish ``post_id`` on ``channel``; committed before returning.

    Raises :class:`AlreadyReserved` when a publication for this post and channel, or with
    this idempotency key, exists already -- also when another process inserts it at the
    same moment (the UNIQUE constraints decide, not a prior SELECT). Derive the key from
    ``RenderedPost.post_key`` to allow one publication per occurrence and channel even
    across re-renders.
    """
    publication = Publication(post_id=post_id, channel=channel, idempotency_key=idempotency_key)
    try:
        with session.begin_nested():
            session.add(publication)
    except IntegrityError as exc:
        existing = get_publication(
            session, post_id=post_id, channel=channel
        ) or get_publication_by_key(session, idempotency_key=idempotency_key)
        if existing is None:  # not a duplicate: e.g. the post does not exist
            session.rollback()
            raise StoreError(f"cannot reserve post {post_id} on {channel!r}: {exc.orig}") from exc
        message = (
            f"post {post_id} on channel {channel!r} is reserved already "
            f"(publication {existing.id}, key {existing.idempotency_key!r}, "
            f"status {existing.status})"
        )
        session.rollback()
        raise AlreadyReserved(message) from None
    session.commit()
    return publication


def _transition(
    session: Session, publication_id: int, status: PublicationStatus, allowed: set | None = None
) -> Publication:
    publication = _get(session, Publication, publication_id, lock=True)
    if publication.status in _FINAL_PUBLICATION or (
        allowed is not None and publication.status not in allowed
    ):
        raise StoreError(
            f"publication {publication_id} is {publication.status}; it cannot become {status.value}"
        )
    publication.status = status.value
    return publication


def mark_publishing(session: Session, *, publication_id: int) -> Publication:
    """About to call the network: allowed from reserved or failed; counts an attempt.

    Never from ``unknown``: the earlier attempt may have gone out, a human must check.
    """
    publication = _transition(
        session,
        publication_id,
        PublicationStatus.PUBLISHING,
        {PublicationStatus.RESERVED, PublicationStatus.FAILED},
    )
    publication.attempts += 1
    session.add(publication)
    session.commit()
    return publication


def unmark_publishing(session: Session, *, publication_id: int) -> Publication:
    """Back from publishing to reserved, for an attempt that was armed ahead of its time
    but provably never sent (held by a crisis freeze, or too late). Uncounts the attempt."""
    publication = _transition(session, publication_id, PublicationStatus.RESERVED,
                              {PublicationStatus.PUBLISHING})
    publication.attempts = max(0, publication.attempts - 1)
    session.add(publication)
    session.commit()
    return publication


def mark_published(
    session: Session,
    *,
    publication_id: int,
    remote_id: str | None,
    remote_url: str | None,
    published_at: datetime | None = None,
) -> Publication:
    published_at = published_at or utcnow()
    _require_aware(published_at, "published_at")
    publication = _transition(session, publication_id, PublicationStatus.PUBLISHED)
    publication.remote_id = remote_id
    publication.remote_url = remote_url
    publication.published_at = published_at
    publication.last_error = None
    session.add(publication)
    session.commit()
    return publication


def _mark_with_error(
    session: Session, publication_id: int, status: PublicationStatus, error: str | None
) -> Publication:
    publication = _transition(session, publication_id, status)
    publication.last_error = error
    session.add(publication)
    session.commit()
    return publication


def mark_failed(session: Session, *, publication_id: int, error: str) -> Publication:
    """The network refused; nothing went out. May be retried via :func:`mark_publishing`."""
    return _mark_with_error(session, publication_id, PublicationStatus.FAILED, error)


def mark_unknown(session: Session, *, publication_id: int, error: str) -> Publication:
    """The request may have reached the network: a human must check before any retry."""
    return _mark_with_error(session, publication_id, PublicationStatus.UNKNOWN, error)


def mark_awaiting_manual(session: Session, *, publication_id: int, note: str = "") -> Publication:
    """A person has to post this one by hand (manual channel, or after ``unknown``)."""
    return _mark_with_error(
        session, publication_id, PublicationStatus.AWAITING_MANUAL, note or None
    )


def mark_skipped(session: Session, *, publication_id: int, reason: str) -> Publication:
    return _mark_with_error(session, publication_id, PublicationStatus.SKIPPED, reason)


# --- audit trail -------------------------------------------------------------------------


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
) -> AuditEvent:
    at = at or utcnow()
    _require_aware(at, "at")
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
    _require_aware(at, "at")
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


def audit_trail(session: Session, *, campaign_id: str) -> list[AuditEvent]:
    """The campaign's audit events, oldest first (ties broken by insertion order)."""
    query = (
        select(AuditEvent)
        .where(AuditEvent.campaign_id == campaign_id)
        .order_by(col(AuditEvent.at), col(AuditEvent.id))
    )
    return list(session.exec(query))
