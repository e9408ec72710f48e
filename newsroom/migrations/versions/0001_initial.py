"""Initial schema: campaigns, occurrences, posts, approvals, publications, audit trail.

Revision ID: 0001
Revises:
Create Date: 2026-11-24

The audit trail is append-only: triggers refuse UPDATE and DELETE on audit_event.
"""

from collections.abc import Sequence

import sqlalchemy as sa
from alembic import op

revision: str = "0001"
down_revision: str | Sequence[str] | None = None
branch_labels: str | Sequence[str] | None = None
depends_on: str | Sequence[str] | None = None

OCCURRENCE_STATUSES = (
    "planned",
    "awaiting_approval",
    "approved",
    "rejected",
    "changes_requested",
    "cancelled",
    "published",
    "partially_published",
    "skipped",
    "held",
)
PUBLICATION_STATUSES = (
    "reserved",
    "publishing",
    "published",
    "failed",
    "unknown",
    "awaiting_manual",
    "skipped",
)

AUDIT_APPEND_ONLY = {
    "postgresql": [
        """
        CREATE FUNCTION audit_event_append_only() RETURNS trigger
        LANGUAGE plpgsql AS $$
        BEGIN
            RAISE EXCEPTION 'audit_event is append-only (% refused)', TG_OP;
        END
        $$
        """,
        """
        CREATE TRIGGER audit_event_append_only
        BEFORE UPDATE OR DELETE ON audit_event
        FOR EACH ROW EXECUTE FUNCTION audit_event_append_only()
        """,
        """
        CREATE TRIGGER audit_event_no_truncate
        BEFORE TRUNCATE ON audit_event
        FOR EACH STATEMENT EXECUTE FUNCTION audit_event_append_only()
        """,
    ],
    "sqlite": [
        """
        CREATE TRIGGER audit_event_no_update BEFORE UPDATE ON audit_event
        BEGIN SELECT RAISE(ABORT, 'audit_event is append-only (UPDATE refused)'); END
        """,
        """
        CREATE TRIGGER audit_event_no_delete BEFORE DELETE ON audit_event
        BEGIN SELECT RAISE(ABORT, 'audit_event is append-only (DELETE refused)'); END
        """,
    ],
}
AUDIT_APPEND_ONLY_DROP = {
    "postgresql": [
        "DROP TRIGGER IF EXISTS audit_event_no_truncate ON audit_event",
        "DROP TRIGGER IF EXISTS audit_event_append_only ON audit_event",
        "DROP FUNCTION IF EXISTS audit_event_append_only()",
    ],
    "sqlite": [
        "DROP TRIGGER IF EXISTS audit_event_no_update",
        "DROP TRIGGER IF EXISTS audit_event_no_delete",
    ],
}


def one_of(column: str, values: Sequence[str]) -> str:
    return f"{column} IN ({', '.join(repr(v) for v in values)})"


def upgrade() -> None:
    op.create_table(
        "audit_event",
        sa.Column("id", sa.Integer(), nullable=False),
        sa.Column("at", sa.DateTime(timezone=True), nullable=False),
        sa.Column("campaign_id", sa.String(), nullable=False),
        sa.Column("occurrence_date", sa.Date(), nullable=True),
        sa.Column("actor", sa.String(), nullable=False),
        sa.Column("action", sa.String(), nullable=False),
        sa.Column("content_hash", sa.String(), nullable=True),
        sa.Column("channel", sa.String(), nullable=True),
        sa.Column("detail", sa.JSON(), nullable=False),
        sa.PrimaryKeyConstraint("id", name=op.f("pk_audit_event")),
    )
    op.create_index(
        "ix_audit_event_campaign_at", "audit_event", ["campaign_id", "at", "id"], unique=False
    )
    op.create_table(
        "campaign",
        sa.Column("id", sa.String(), nullable=False),
        sa.Column("title", sa.String(), nullable=False),
        sa.Column("kind", sa.String(), nullable=False),
        sa.Column("topic", sa.String(), nullable=False),
        sa.Column("source_file", sa.String(), nullable=False),
        sa.Column("definition_hash", sa.String(), nullable=False),
        sa.Column("definition", sa.JSON(), nullable=False),
        sa.Column("updated_at", sa.DateTime(timezone=True), nullable=False),
        sa.Column("removed_at", sa.DateTime(timezone=True), nullable=True),
        sa.PrimaryKeyConstraint("id", name=op.f("pk_campaign")),
    )
    op.create_table(
        "occurrence",
        sa.Column("id", sa.Integer(), nullable=False),
        sa.Column("campaign_id", sa.String(), nullable=False),
        sa.Column("occurrence_date", sa.Date(), nullable=False),
        sa.Column("first_publish_at", sa.DateTime(timezone=True), nullable=False),
        sa.Column("status", sa.String(), nullable=False),
        sa.Column("bundle_hash", sa.String(), nullable=True),
        sa.Column("created_at", sa.DateTime(timezone=True), nullable=False),
        sa.CheckConstraint(
            one_of("status", OCCURRENCE_STATUSES),
            name=op.f("ck_occurrence_status"),
        ),
        sa.ForeignKeyConstraint(
            ["campaign_id"], ["campaign.id"], name=op.f("fk_occurrence_campaign_id_campaign")
        ),
        sa.PrimaryKeyConstraint("id", name=op.f("pk_occurrence")),
        sa.UniqueConstraint(
            "campaign_id", "occurrence_date", name=op.f("uq_occurrence_campaign_id_occurrence_date")
        ),
    )
    op.create_index(op.f("ix_occurrence_campaign_id"), "occurrence", ["campaign_id"], unique=False)
    op.create_index(op.f("ix_occurrence_status"), "occurrence", ["status"], unique=False)
    op.create_table(
        "approval_request",
        sa.Column("id", sa.Integer(), nullable=False),
        sa.Column("occurrence_id", sa.Integer(), nullable=False),
        sa.Column("person_id", sa.String(), nullable=False),
        sa.Column("bundle_hash", sa.String(), nullable=False),
        sa.Column("deadline", sa.DateTime(timezone=True), nullable=False),
        sa.Column("status", sa.String(), nullable=False),
        sa.Column("token_nonce", sa.String(), nullable=False),
        sa.Column("created_at", sa.DateTime(timezone=True), nullable=False),
        sa.Column("decided_at", sa.DateTime(timezone=True), nullable=True),
        sa.CheckConstraint(
            "status IN ('pending', 'approved', 'rejected', 'changes_requested', 'expired', 'void')",
            name=op.f("ck_approval_request_status"),
        ),
        sa.ForeignKeyConstraint(
            ["occurrence_id"],
            ["occurrence.id"],
            name=op.f("fk_approval_request_occurrence_id_occurrence"),
        ),
        sa.PrimaryKeyConstraint("id", name=op.f("pk_approval_request")),
        sa.UniqueConstraint(
            "occurrence_id",
            "person_id",
            "bundle_hash",
            name=op.f("uq_approval_request_occurrence_id_person_id_bundle_hash"),
        ),
        sa.UniqueConstraint("token_nonce", name=op.f("uq_approval_request_token_nonce")),
    )
    op.create_index(
        op.f("ix_approval_request_occurrence_id"),
        "approval_request",
        ["occurrence_id"],
        unique=False,
    )
    op.create_table(
        "post",
        sa.Column("id", sa.Integer(), nullable=False),
        sa.Column("occurrence_id", sa.Integer(), nullable=False),
        sa.Column("channel", sa.String(), nullable=False),
        sa.Column("channel_type", sa.String(), nullable=False),
        sa.Column("publish_at", sa.DateTime(timezone=True), nullable=False),
        sa.Column("text", sa.Text(), nullable=False),
        sa.Column("payload", sa.JSON(), nullable=False),
        sa.Column("content_hash", sa.String(), nullable=False),
        sa.Column("created_at", sa.DateTime(timezone=True), nullable=False),
        sa.Column("superseded_at", sa.DateTime(timezone=True), nullable=True),
        sa.ForeignKeyConstraint(
            ["occurrence_id"], ["occurrence.id"], name=op.f("fk_post_occurrence_id_occurrence")
        ),
        sa.PrimaryKeyConstraint("id", name=op.f("pk_post")),
        sa.UniqueConstraint(
            "occurrence_id",
            "channel",
            "content_hash",
            name=op.f("uq_post_occurrence_id_channel_content_hash"),
        ),
    )
    op.create_index("ix_post_current", "post", ["occurrence_id", "superseded_at"], unique=False)
    op.create_table(
        "approval_decision",
        sa.Column("id", sa.Integer(), nullable=False),
        sa.Column("request_id", sa.Integer(), nullable=False),
        sa.Column("decision", sa.String(), nullable=False),
        sa.Column("comment", sa.Text(), nullable=False),
        sa.Column("decided_by", sa.String(), nullable=False),
        sa.Column("via", sa.String(), nullable=False),
        sa.Column("bundle_hash", sa.String(), nullable=False),
        sa.Column("decided_at", sa.DateTime(timezone=True), nullable=False),
        sa.CheckConstraint(
            "decision IN ('approve', 'reject', 'request_changes')",
            name=op.f("ck_approval_decision_decision"),
        ),
        sa.CheckConstraint(
            "via IN ('link', 'prefect_ui', 'cli')", name=op.f("ck_approval_decision_via")
        ),
        sa.ForeignKeyConstraint(
            ["request_id"],
            ["approval_request.id"],
            name=op.f("fk_approval_decision_request_id_approval_request"),
        ),
        sa.PrimaryKeyConstraint("id", name=op.f("pk_approval_decision")),
        sa.UniqueConstraint("request_id", name=op.f("uq_approval_decision_request_id")),
    )
    op.create_table(
        "publication",
        sa.Column("id", sa.Integer(), nullable=False),
        sa.Column("post_id", sa.Integer(), nullable=False),
        sa.Column("channel", sa.String(), nullable=False),
        sa.Column("status", sa.String(), nullable=False),
        sa.Column("idempotency_key", sa.String(), nullable=False),
        sa.Column("remote_id", sa.String(), nullable=True),
        sa.Column("remote_url", sa.String(), nullable=True),
        sa.Column("attempts", sa.Integer(), nullable=False),
        sa.Column("last_error", sa.Text(), nullable=True),
        sa.Column("reserved_at", sa.DateTime(timezone=True), nullable=False),
        sa.Column("published_at", sa.DateTime(timezone=True), nullable=True),
        sa.CheckConstraint(
            one_of("status", PUBLICATION_STATUSES),
            name=op.f("ck_publication_status"),
        ),
        sa.ForeignKeyConstraint(["post_id"], ["post.id"], name=op.f("fk_publication_post_id_post")),
        sa.PrimaryKeyConstraint("id", name=op.f("pk_publication")),
        sa.UniqueConstraint("idempotency_key", name=op.f("uq_publication_idempotency_key")),
        sa.UniqueConstraint("post_id", "channel", name=op.f("uq_publication_post_id_channel")),
    )
    for statement in AUDIT_APPEND_ONLY.get(op.get_context().dialect.name, []):
        op.execute(statement)


def downgrade() -> None:
    for statement in AUDIT_APPEND_ONLY_DROP.get(op.get_context().dialect.name, []):
        op.execute(statement)
    op.drop_table("publication")
    op.drop_table("approval_decision")
    op.drop_index("ix_post_current", table_name="post")
    op.drop_table("post")
    op.drop_index(op.f("ix_approval_request_occurrence_id"), table_name="approval_request")
    op.drop_table("approval_request")
    op.drop_index(op.f("ix_occurrence_status"), table_name="occurrence")
    op.drop_index(op.f("ix_occurrence_campaign_id"), table_name="occurrence")
    op.drop_table("occurrence")
    op.drop_table("campaign")
    op.drop_index("ix_audit_event_campaign_at", table_name="audit_event")
    op.drop_table("audit_event")
