"""Revocable invitations to the request form; audit events recorded once per key.

Revision ID: 0006
Revises: 0005
Create Date: 2026-12-01

request_invitation: one row per invitation link issued (its nonce, for whom, when, until
when), and when and by whom it was revoked.
request_invitation_cutoff: every invitation of a Dezernat or Amt issued before a moment
is revoked, also the links issued before this revision, which have no row.
audit_event.once_key: a unique key for events recorded at most once (``approval.viewed``
once per link and minute). Added in place (no table copy on SQLite), so the triggers
that keep the audit trail append-only stay.
"""

from collections.abc import Sequence

import sqlalchemy as sa
from alembic import op

revision: str = "0006"
down_revision: str | Sequence[str] | None = "0005"
branch_labels: str | Sequence[str] | None = None
depends_on: str | Sequence[str] | None = None


def upgrade() -> None:
    op.create_table(
        "request_invitation",
        sa.Column("id", sa.Integer(), nullable=False),
        sa.Column("nonce", sa.String(), nullable=False),
        sa.Column("requester_kind", sa.String(), nullable=False),
        sa.Column("requester_id", sa.String(), nullable=False),
        sa.Column("issued_at", sa.DateTime(timezone=True), nullable=False),
        sa.Column("expires_at", sa.DateTime(timezone=True), nullable=False),
        sa.Column("issued_by", sa.String(), nullable=False),
        sa.Column("revoked_at", sa.DateTime(timezone=True), nullable=True),
        sa.Column("revoked_by", sa.String(), nullable=True),
        sa.PrimaryKeyConstraint("id", name=op.f("pk_request_invitation")),
        sa.UniqueConstraint("nonce", name=op.f("uq_request_invitation_nonce")),
    )
    op.create_index(op.f("ix_request_invitation_requester_id"), "request_invitation",
                    ["requester_id"], unique=False)
    op.create_table(
        "request_invitation_cutoff",
        sa.Column("id", sa.Integer(), nullable=False),
        sa.Column("requester_kind", sa.String(), nullable=False),
        sa.Column("requester_id", sa.String(), nullable=False),
        sa.Column("before", sa.DateTime(timezone=True), nullable=False),
        sa.Column("revoked_by", sa.String(), nullable=False),
        sa.PrimaryKeyConstraint("id", name=op.f("pk_request_invitation_cutoff")),
    )
    op.create_index(op.f("ix_request_invitation_cutoff_requester_id"),
                    "request_invitation_cutoff", ["requester_id"], unique=False)
    # Not in batch mode: on SQLite that would copy the table and drop its triggers.
    op.add_column("audit_event", sa.Column("once_key", sa.String(), nullable=True))
    op.create_index(op.f("ix_audit_event_once_key"), "audit_event", ["once_key"], unique=True)


def downgrade() -> None:
    op.drop_index(op.f("ix_audit_event_once_key"), table_name="audit_event")
    # SQLite >= 3.35 drops a column in place (the triggers stay); PostgreSQL too.
    op.execute("ALTER TABLE audit_event DROP COLUMN once_key")
    op.drop_index(op.f("ix_request_invitation_cutoff_requester_id"),
                  table_name="request_invitation_cutoff")
    op.drop_table("request_invitation_cutoff")
    op.drop_index(op.f("ix_request_invitation_requester_id"), table_name="request_invitation")
    op.drop_table("request_invitation")
