"""Newsroom's persistence: SQLModel tables, engines and sessions, CRUD functions.

Import it as a whole (``from newsroom import store``, then ``store.X``); the modules
behind it, each imported only by those after it::

    models, db                 the tables; engines, sessions, migrations
    crud_common                shared checks, loading a row, the race-safe insert
    crud_campaigns             campaign records
    crud_occurrences           occurrences and their approval gate
    crud_posts                 rendered posts (moves an occurrence's bundle hash)
    crud_approvals             approval requests and decisions
    crud_publications          publications and their states
    crud_audit                 the audit trail
    requests_crud              requests from Dezernate and Ämter (newsroom.requests)

The ``crud_*`` modules import ``crud_common`` and ``models``, never one another.
"""

from newsroom.store.crud_approvals import (
    approval_requests,
    create_approval_request,
    ensure_approval_request,
    expire_overdue_requests,
    get_approval_request,
    get_decision,
    get_request_by_nonce,
    later_step_asked,
    mark_request_notified,
    record_decision,
    set_reminders_sent,
    void_requests_for_bundle,
    void_stale_requests,
)
from newsroom.store.crud_audit import (
    add_audit_events,
    audit_once_recorded,
    audit_trail,
    record_audit,
    record_audit_once,
)
from newsroom.store.crud_campaigns import (
    active_campaigns,
    definition_hash,
    get_campaign,
    mark_campaign_removed,
    upsert_campaign,
)
from newsroom.store.crud_occurrences import (
    get_occurrence,
    get_or_create_occurrence,
    move_occurrence,
    open_gates,
    reopen_escalated_gate,
    set_flow_run,
    set_gate_bundle,
    set_occurrence_status,
    settle_gate,
    waiting_flow_runs,
)
from newsroom.store.crud_posts import current_posts, post_history, store_rendered_posts
from newsroom.store.crud_publications import (
    claim_new_armed,
    get_publication,
    get_publication_by_key,
    mark_awaiting_manual,
    mark_failed,
    mark_published,
    mark_publishing,
    mark_sending,
    mark_skipped,
    mark_unknown,
    new_claim_token,
    occurrence_publications,
    publication_exists,
    reserve_for_sending,
    reserve_publication,
    skip_unsent,
    take_over_unsent,
    unmark_publishing,
)
from newsroom.store.db import (
    alembic_config,
    make_engine,
    normalize_url,
    session_scope,
    upgrade_database,
)
from newsroom.store.models import (
    ApprovalDecision,
    ApprovalRequest,
    ApprovalStatus,
    AuditEvent,
    CampaignRecord,
    CrisisRecord,
    Decision,
    DecisionVia,
    GateResult,
    Occurrence,
    OccurrenceStatus,
    PostRecord,
    Publication,
    PublicationStatus,
    UTCDateTime,
    stored_id,
)

__all__ = [
    "stored_id",
    "ApprovalDecision",
    "ApprovalRequest",
    "ApprovalStatus",
    "AuditEvent",
    "CampaignRecord",
    "CrisisRecord",
    "Decision",
    "DecisionVia",
    "GateResult",
    "Occurrence",
    "OccurrenceStatus",
    "PostRecord",
    "Publication",
    "PublicationStatus",
    "UTCDateTime",
    "active_campaigns",
    "alembic_config",
    "approval_requests",
    "add_audit_events",
    "audit_trail",
    "claim_new_armed",
    "create_approval_request",
    "current_posts",
    "definition_hash",
    "ensure_approval_request",
    "expire_overdue_requests",
    "later_step_asked",
    "get_approval_request",
    "get_campaign",
    "get_decision",
    "get_occurrence",
    "get_or_create_occurrence",
    "get_publication",
    "get_publication_by_key",
    "occurrence_publications",
    "get_request_by_nonce",
    "make_engine",
    "mark_awaiting_manual",
    "mark_campaign_removed",
    "mark_failed",
    "mark_published",
    "mark_publishing",
    "mark_sending",
    "publication_exists",
    "reserve_for_sending",
    "new_claim_token",
    "skip_unsent",
    "take_over_unsent",
    "unmark_publishing",
    "mark_request_notified",
    "mark_skipped",
    "mark_unknown",
    "normalize_url",
    "open_gates",
    "reopen_escalated_gate",
    "waiting_flow_runs",
    "post_history",
    "record_audit",
    "record_audit_once",
    "audit_once_recorded",
    "record_decision",
    "reserve_publication",
    "session_scope",
    "set_flow_run",
    "set_gate_bundle",
    "move_occurrence",
    "set_occurrence_status",
    "set_reminders_sent",
    "settle_gate",
    "store_rendered_posts",
    "upgrade_database",
    "upsert_campaign",
    "void_requests_for_bundle",
    "void_stale_requests",
]
