"""Database tables of Newsroom (SQLModel).

Every timestamp is stored in UTC and comes back timezone-aware (:class:`UTCDateTime`);
JSON columns use SQLAlchemy's generic ``JSON`` type so the same models work on SQLite
and PostgreSQL. The schema itself is created by the Alembic migrations in
``newsroom/migrations``; a test keeps them and these models identical.
"""

from __future__ import annotations

from datetime import UTC, date, datetime
from enum import StrEnum
from typing import Any

from sqlalchemy import JSON, CheckConstraint, DateTime, Index, Text, UniqueConstraint, event
from sqlalchemy.engine import Dialect
from sqlalchemy.types import TypeDecorator
from sqlmodel import Field, SQLModel

from newsroom.errors import StoreError
from newsroom.posts import RenderedPost

# Named constraints, so that Alembic (and batch mode on SQLite) can address them later.
SQLModel.metadata.naming_convention = {
    "ix": "ix_%(column_0_label)s",
    "uq": "uq_%(table_name)s_%(column_0_N_name)s",
    "ck": "ck_%(table_name)s_%(constraint_name)s",
    "fk": "fk_%(table_name)s_%(column_0_name)s_%(referred_table_name)s",
    "pk": "pk_%(table_name)s",
}


def stored_id(row: Any) -> int:
    """The primary key of a row that is in the database (read, or flushed after an
    insert); SQLModel types it ``int | None`` because a new row has none yet."""
    if row.id is None:
        raise ValueError(f"{type(row).__name__} has no id yet: it was never stored")
    return int(row.id)


def utcnow() -> datetime:
    return datetime.now(UTC)


class UTCDateTime(TypeDecorator[datetime]):
    """A timestamp stored in UTC and returned timezone-aware (UTC).

    Naive datetimes are refused on write: a wall-clock time without a zone is ambiguous,
    and guessing is how a post goes out an hour early. SQLite has no zone-aware type, so
    the value is stored there as naive UTC; PostgreSQL gets ``timestamp with time zone``.
    """

    impl = DateTime(timezone=True)
    cache_ok = True

    def process_bind_param(self, value: datetime | None, dialect: Dialect) -> datetime | None:
        if value is None:
            return None
        if not isinstance(value, datetime):
            raise TypeError(f"expected a datetime, got {type(value).__name__}: {value!r}")
        if value.tzinfo is None or value.utcoffset() is None:
            raise ValueError(
                f"naive datetime {value.isoformat()} refused: attach a time zone "
                "(e.g. Europe/Berlin or UTC) before storing it"
            )
        value = value.astimezone(UTC)
        if dialect.name == "sqlite":
            return value.replace(tzinfo=None)
        return value

    def process_result_value(self, value: datetime | None, dialect: Dialect) -> datetime | None:
        if value is None:
            return None
        if value.tzinfo is None:
            return value.replace(tzinfo=UTC)
        return value.astimezone(UTC)


# --- allowed values ----------------------------------------------------------------------


class OccurrenceStatus(StrEnum):
    PLANNED = "planned"
    AWAITING_APPROVAL = "awaiting_approval"
    APPROVED = "approved"
    REJECTED = "rejected"
    CHANGES_REQUESTED = "changes_requested"
    CANCELLED = "cancelled"
    PUBLISHED = "published"
    PARTIALLY_PUBLISHED = "partially_published"
    SKIPPED = "skipped"
    HELD = "held"


class ApprovalStatus(StrEnum):
    PENDING = "pending"
    APPROVED = "approved"
    REJECTED = "rejected"
    CHANGES_REQUESTED = "changes_requested"
    EXPIRED = "expired"
    VOID = "void"


class Decision(StrEnum):
    APPROVE = "approve"
    REJECT = "reject"
    REQUEST_CHANGES = "request_changes"


class DecisionVia(StrEnum):
    LINK = "link"
    PREFECT_UI = "prefect_ui"
    CLI = "cli"


class GateResult(StrEnum):
    """What an occurrence's approval gate came to (``occurrence.gate_outcome``).

    ``escalated`` is not final: the deadline passed, the office was told, an admin decides.
    """

    APPROVED = "approved"
    REJECTED = "rejected"
    CHANGES_REQUESTED = "changes_requested"
    CANCELLED = "cancelled"
    ESCALATED = "escalated"


class PublicationStatus(StrEnum):
    RESERVED = "reserved"
    PUBLISHING = "publishing"
    PUBLISHED = "published"
    FAILED = "failed"
    UNKNOWN = "unknown"
    AWAITING_MANUAL = "awaiting_manual"
    SKIPPED = "skipped"


def _one_of(column: str, values: type[StrEnum], name: str) -> CheckConstraint:
    allowed = ", ".join(f"'{v.value}'" for v in values)
    return CheckConstraint(f"{column} IN ({allowed})", name=name)


# --- tables ------------------------------------------------------------------------------


class CampaignRecord(SQLModel, table=True):
    """The last known definition of a campaign from the catalog."""

    __tablename__ = "campaign"

    id: str = Field(primary_key=True)  # the campaign id from the catalog
    title: str
    kind: str
    topic: str
    source_file: str
    definition_hash: str
    definition: dict[str, Any] = Field(default_factory=dict, sa_type=JSON)
    updated_at: datetime = Field(default_factory=utcnow, sa_type=UTCDateTime)
    removed_at: datetime | None = Field(default=None, sa_type=UTCDateTime)


class Occurrence(SQLModel, table=True):
    """One dated instance of a campaign, e.g. the 27 January 2027 remembrance post."""

    __tablename__ = "occurrence"
    __table_args__ = (
        UniqueConstraint("campaign_id", "occurrence_date", "trigger_key"),
        _one_of("status", OccurrenceStatus, "status"),
        _one_of("gate_outcome", GateResult, "gate_outcome"),
    )

    id: int | None = Field(default=None, primary_key=True)
    campaign_id: str = Field(foreign_key="campaign.id", index=True)
    occurrence_date: date
    first_publish_at: datetime = Field(sa_type=UTCDateTime)
    status: str = Field(default=OccurrenceStatus.PLANNED.value, index=True)
    bundle_hash: str | None = None  # newsroom.posts.bundle_hash of the current posts
    created_at: datetime = Field(default_factory=utcnow, sa_type=UTCDateTime)
    # The approval gate (newsroom.approval): the bundle it asks about, the Prefect flow
    # run waiting at it, and what it came to (set once; only an admin changes it later).
    gate_bundle_hash: str | None = None
    flow_run_id: str | None = None
    gate_outcome: str | None = None
    gate_settled_at: datetime | None = Field(default=None, sa_type=UTCDateTime)
    escalated_at: datetime | None = Field(default=None, sa_type=UTCDateTime)
    # "" for a dated occurrence; for an on-demand (crisis) trigger its key, so that a crisis
    # campaign triggered twice on one day has two occurrences (migration 0003).
    trigger_key: str = Field(default="", sa_column_kwargs={"server_default": ""})
    # Posts held by a crisis freeze and moved by the office to a new time: channel -> new
    # time (ISO 8601, UTC); they go out then instead of at the catalog's (migration 0005).
    moved_to: dict[str, str] | None = Field(default=None, sa_type=JSON)


class PostRecord(SQLModel, table=True):
    """A rendered post. Changed content is a new row; the old one is marked superseded."""

    __tablename__ = "post"
    __table_args__ = (
        UniqueConstraint("occurrence_id", "channel", "content_hash"),
        Index("ix_post_current", "occurrence_id", "superseded_at"),
    )

    id: int | None = Field(default=None, primary_key=True)
    occurrence_id: int = Field(foreign_key="occurrence.id")
    channel: str
    channel_type: str
    publish_at: datetime = Field(sa_type=UTCDateTime)
    text: str = Field(sa_type=Text)
    payload: dict[str, Any] = Field(sa_type=JSON)  # RenderedPost.canonical()
    content_hash: str
    created_at: datetime = Field(default_factory=utcnow, sa_type=UTCDateTime)
    superseded_at: datetime | None = Field(default=None, sa_type=UTCDateTime)

    def to_rendered(self) -> RenderedPost:
        return RenderedPost.from_canonical(self.payload)


class ApprovalRequest(SQLModel, table=True):
    """A request to one person to approve exactly one bundle of posts, in one step of the
    campaign's approval chain (an admin may decide several steps of one bundle)."""

    __tablename__ = "approval_request"
    __table_args__ = (
        UniqueConstraint("occurrence_id", "person_id", "bundle_hash", "step"),
        _one_of("status", ApprovalStatus, "status"),
    )

    id: int | None = Field(default=None, primary_key=True)
    occurrence_id: int = Field(foreign_key="occurrence.id", index=True)
    person_id: str
    bundle_hash: str
    deadline: datetime = Field(sa_type=UTCDateTime)
    status: str = Field(default=ApprovalStatus.PENDING.value)
    token_nonce: str = Field(unique=True)  # makes each approval link single-use
    created_at: datetime = Field(default_factory=utcnow, sa_type=UTCDateTime)
    decided_at: datetime | None = Field(default=None, sa_type=UTCDateTime)
    notified_at: datetime | None = Field(default=None, sa_type=UTCDateTime)
    reminders_sent: int = Field(default=0, sa_column_kwargs={"server_default": "0"})
    # The step of the approval chain (0: the first; the one-step form has only 0).
    step: int = Field(default=0, sa_column_kwargs={"server_default": "0"})


class ApprovalDecision(SQLModel, table=True):
    """The one decision on an approval request."""

    __tablename__ = "approval_decision"
    __table_args__ = (
        _one_of("decision", Decision, "decision"),
        _one_of("via", DecisionVia, "via"),
    )

    id: int | None = Field(default=None, primary_key=True)
    request_id: int = Field(foreign_key="approval_request.id", unique=True)
    decision: str
    comment: str = Field(default="", sa_type=Text)
    decided_by: str  # person id, or "admin:<name>"
    via: str
    bundle_hash: str  # the bundle the decider saw
    decided_at: datetime = Field(default_factory=utcnow, sa_type=UTCDateTime)


class Publication(SQLModel, table=True):
    """The (single) attempt to publish one post on one channel."""

    __tablename__ = "publication"
    __table_args__ = (
        UniqueConstraint("post_id", "channel"),
        _one_of("status", PublicationStatus, "status"),
    )

    id: int | None = Field(default=None, primary_key=True)
    post_id: int = Field(foreign_key="post.id")
    channel: str
    status: str = Field(default=PublicationStatus.RESERVED.value)
    idempotency_key: str = Field(unique=True)
    remote_id: str | None = None
    remote_url: str | None = None
    attempts: int = 0
    last_error: str | None = Field(default=None, sa_type=Text)
    reserved_at: datetime = Field(default_factory=utcnow, sa_type=UTCDateTime)
    published_at: datetime | None = Field(default=None, sa_type=UTCDateTime)
    # Who holds the "publishing" claim: a new random token at every claim, so that a
    # claim taken over (a dead worker's armed post sent by the next run) is no longer the
    # first claimant's to send or hand back.
    claim_token: str | None = None
    # From when a request for this publication may have left for the network: set when a
    # claim is about to send (just before the second, for a burst's armed posts: one
    # transaction for the burst). "publishing" without it was provably never sent.
    send_started_at: datetime | None = Field(default=None, sa_type=UTCDateTime)
    # Which process set send_started_at: its send journal (newsroom/send_journal.py),
    # which tells a later run whether that process, once gone, ever began the request.
    sent_by: str | None = None


class AuditEvent(SQLModel, table=True):
    """Who did what, when, to which content. Append-only (enforced in the database too)."""

    __tablename__ = "audit_event"
    __table_args__ = (Index("ix_audit_event_campaign_at", "campaign_id", "at", "id"),)

    id: int | None = Field(default=None, primary_key=True)
    at: datetime = Field(default_factory=utcnow, sa_type=UTCDateTime)
    campaign_id: str
    occurrence_date: date | None = None
    actor: str
    action: str
    content_hash: str | None = None
    channel: str | None = None
    detail: dict[str, Any] = Field(default_factory=dict, sa_type=JSON)
    # Set for events recorded at most once per key (e.g. ``approval.viewed`` once per link
    # and minute): the unique index decides, also between several web processes.
    once_key: str | None = Field(default=None, unique=True, index=True)


class CrisisRecord(SQLModel, table=True):
    """One crisis message: a crisis campaign triggered with its variables (newsroom.crisis).

    While any crisis has no ``ended_at``, scheduled non-crisis posts are held (freeze).
    ``trigger_key`` identifies the trigger: a retried run of the same trigger finds it.
    """

    __tablename__ = "crisis"

    id: int | None = Field(default=None, primary_key=True)
    trigger_key: str = Field(unique=True)
    campaign_id: str = Field(foreign_key="campaign.id", index=True)
    occurrence_id: int | None = Field(default=None, foreign_key="occurrence.id")
    variables: dict[str, Any] = Field(default_factory=dict, sa_type=JSON)
    started_at: datetime = Field(sa_type=UTCDateTime)
    started_by: str
    approver: str | None = None  # fast path: the one person asked
    ended_at: datetime | None = Field(default=None, sa_type=UTCDateTime, index=True)
    ended_by: str | None = None


class RecallStatus(StrEnum):
    """Where the recall of one channel of an occurrence stands (newsroom.recall)."""

    REQUESTED = "requested"  # recorded; its publication's outcome is awaited, or a retry
    CANCELLED = "cancelled"  # nothing was published there: it never will be
    WITHDRAWING = "withdrawing"  # a withdrawal is being sent (claim_token)
    GONE = "gone"  # taken down (or it was gone already)
    MANUAL = "manual"  # the network cannot take it back: a person has been asked
    CORRECTED = "corrected"  # cannot be taken back: a correction went to its recipients
    FAILED = "failed"  # the network refused; reported, may be tried again
    UNKNOWN = "unknown"  # a correction may or may not have gone out; a person checks


class Recall(SQLModel, table=True):
    """The recall of one channel of one occurrence: taken down where it was published,
    never published where it was not. One row per occurrence and channel; a withdrawal
    is claimed (compare-and-set) before a network is called, like a publication."""

    __tablename__ = "recall"
    __table_args__ = (
        UniqueConstraint("occurrence_id", "channel"),
        _one_of("status", RecallStatus, "status"),
    )

    id: int | None = Field(default=None, primary_key=True)
    occurrence_id: int = Field(foreign_key="occurrence.id", index=True)
    channel: str
    publication_id: int | None = Field(default=None, foreign_key="publication.id")
    status: str = Field(default=RecallStatus.REQUESTED.value)
    requested_by: str  # the registry person (id) who recalled
    reason: str = Field(sa_type=Text)
    requested_at: datetime = Field(default_factory=utcnow, sa_type=UTCDateTime)
    claim_token: str | None = None
    claimed_at: datetime | None = Field(default=None, sa_type=UTCDateTime)
    attempts: int = 0
    done_at: datetime | None = Field(default=None, sa_type=UTCDateTime)
    detail: str | None = Field(default=None, sa_type=Text)


@event.listens_for(AuditEvent, "before_update")
def _refuse_audit_update(mapper: Any, connection: Any, target: AuditEvent) -> None:
    raise StoreError("the audit trail is append-only: an AuditEvent cannot be changed")


@event.listens_for(AuditEvent, "before_delete")
def _refuse_audit_delete(mapper: Any, connection: Any, target: AuditEvent) -> None:
    raise StoreError("the audit trail is append-only: an AuditEvent cannot be deleted")


TABLES: tuple[type[SQLModel], ...] = (
    CampaignRecord,
    Occurrence,
    PostRecord,
    ApprovalRequest,
    ApprovalDecision,
    Publication,
    AuditEvent,
    CrisisRecord,
    Recall,
)


# --- requests from Dezernate and Ämter (newsroom.requests) -------------------------------


class RequestStatus(StrEnum):
    """Where a request to the communications office stands (see newsroom.requests)."""

    SUBMITTED = "submitted"
    ASKED_BACK = "asked_back"
    RESUBMITTED = "resubmitted"
    ACCEPTED = "accepted"
    DECLINED = "declined"


class RequesterKind(StrEnum):
    PORTFOLIO = "portfolio"  # a Dezernat
    OFFICE = "office"  # an Amt


class CampaignRequest(SQLModel, table=True):
    """A Dezernat's or an Amt's request for posts, until the office accepts or declines it.

    ``revision`` counts the submissions (1, then +1 per answer to a question asked back);
    ``notified`` lists the messages already sent (e.g. ``office:1``), so a repeated run
    never sends one twice.
    """

    __tablename__ = "campaign_request"
    __table_args__ = (
        _one_of("status", RequestStatus, "status"),
        _one_of("requester_kind", RequesterKind, "requester_kind"),
    )

    id: int | None = Field(default=None, primary_key=True)
    requester_kind: str
    requester_id: str = Field(index=True)
    title: str
    topic: str
    desired_from: date
    desired_to: date | None = None
    desired_time: str | None = None  # HH:MM, Europe/Berlin
    channels: list[str] = Field(default_factory=list, sa_type=JSON)
    text: str = Field(sa_type=Text)
    hashtags: list[str] = Field(default_factory=list, sa_type=JSON)
    links: list[str] = Field(default_factory=list, sa_type=JSON)
    notes: str = Field(default="", sa_type=Text)
    contact_name: str
    contact_email: str
    status: str = Field(default=RequestStatus.SUBMITTED.value, index=True)
    revision: int = 1
    question: str | None = Field(default=None, sa_type=Text)  # the last question asked back
    answer: str | None = Field(default=None, sa_type=Text)  # the requester's answer to it
    reason: str | None = Field(default=None, sa_type=Text)  # why it was declined
    decided_by: str | None = None
    decided_at: datetime | None = Field(default=None, sa_type=UTCDateTime)
    campaign_id: str | None = None  # the campaign file written on acceptance
    campaign_file: str | None = None
    flow_run_id: str | None = None  # the Prefect run carrying the current revision
    notified: list[str] = Field(default_factory=list, sa_type=JSON)
    invite_nonce: str
    created_at: datetime = Field(default_factory=utcnow, sa_type=UTCDateTime)
    updated_at: datetime = Field(default_factory=utcnow, sa_type=UTCDateTime)


class RequestImage(SQLModel, table=True):
    """An image attached to a request; the file lies under the data dir (``stored_path``)."""

    __tablename__ = "campaign_request_image"
    __table_args__ = (UniqueConstraint("request_id", "position"),)

    id: int | None = Field(default=None, primary_key=True)
    request_id: int = Field(foreign_key="campaign_request.id", index=True)
    position: int
    filename: str  # the name it was uploaded with (cleaned)
    stored_path: str  # relative to Settings.data_dir
    content_type: str
    size: int
    sha256: str
    alt: str = Field(sa_type=Text)
    created_at: datetime = Field(default_factory=utcnow, sa_type=UTCDateTime)


TABLES += (CampaignRequest, RequestImage)


# --- invitations to the request form (newsroom.invitations) ------------------------------


class RequestInvitation(SQLModel, table=True):
    """An invitation link to the request form as issued (``newsroom requests invite``).

    The link itself is a credential and is not stored; its ``nonce`` names it. A revoked
    invitation (``revoked_at``) no longer opens the form.
    """

    __tablename__ = "request_invitation"

    id: int | None = Field(default=None, primary_key=True)
    nonce: str = Field(unique=True)
    requester_kind: str
    requester_id: str = Field(index=True)
    issued_at: datetime = Field(sa_type=UTCDateTime)
    expires_at: datetime = Field(sa_type=UTCDateTime)
    issued_by: str
    revoked_at: datetime | None = Field(default=None, sa_type=UTCDateTime)
    revoked_by: str | None = None


class InvitationCutoff(SQLModel, table=True):
    """Every invitation of a Dezernat or Amt issued before ``before`` is revoked: also
    the links issued before invitations were recorded, which have no row of their own."""

    __tablename__ = "request_invitation_cutoff"

    id: int | None = Field(default=None, primary_key=True)
    requester_kind: str
    requester_id: str = Field(index=True)
    before: datetime = Field(sa_type=UTCDateTime)
    revoked_by: str


TABLES += (RequestInvitation, InvitationCutoff)
