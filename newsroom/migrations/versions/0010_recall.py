"""Recalls: one row per occurrence and channel taken back (newsroom/recall.py).

Revision ID: 0010
Revises: 0009
Create Date: 2026-12-07

recall: which channel of which occurrence was recalled, by whom and why, its publication,
and where the withdrawal stands (requested, cancelled, withdrawing under a claim token,
gone, manual, corrected, failed, unknown).
"""

from collections.abc import Sequence

import sqlalchemy as sa
from alembic import op

revision: str = "0010"
down_revision: str | Sequence[str] | None = "0009"
branch_labels: str | Sequence[str] | None = None
depends_on: str | Sequence[str] | None = None

STATUSES = ("requested", "cancelled", "withdrawing", "gone", "manual", "corrected", "failed",
            "unknown")


def upgrade() -> None:
    op.create_table(
        "recall",
        sa.Column("id", sa.Integer(), nullable=False),
        sa.Column("occurrence_id", sa.Integer(), nullable=False),
        sa.Column("channel", sa.String(), nullable=False),
        sa.Column("publication_id", sa.Integer(), nullable=True),
        sa.Column("status", sa.String(), nullable=False),
        sa.Column("requested_by", sa.String(), nullable=False),
        sa.Column("reason", sa.Text(), nullable=False),
        sa.Column("requested_at", sa.DateTime(timezone=True), nullable=False),
        sa.Column("claim_token", sa.String(), nullable=True),
        sa.Column("claimed_at", sa.DateTime(timezone=True), nullable=True),
        sa.Column("attempts", sa.Integer(), nullable=False),
        sa.Column("done_at", sa.DateTime(timezone=True), nullable=True),
        sa.Column("detail", sa.Text(), nullable=True),
        sa.CheckConstraint(f"status IN ({', '.join(repr(s) for s in STATUSES)})",
                           name=op.f("ck_recall_status")),
        sa.ForeignKeyConstraint(["occurrence_id"], ["occurrence.id"],
                                name=op.f("fk_recall_occurrence_id_occurrence")),
        sa.ForeignKeyConstraint(["publication_id"], ["publication.id"],
                                name=op.f("fk_recall_publication_id_publication")),
        sa.PrimaryKeyConstraint("id", name=op.f("pk_recall")),
        sa.UniqueConstraint("occurrence_id", "channel",
                            name=op.f("uq_recall_occurrence_id_channel")),
    )
    op.create_index(op.f("ix_recall_occurrence_id"), "recall", ["occurrence_id"], unique=False)


def downgrade() -> None:
    op.drop_index(op.f("ix_recall_occurrence_id"), table_name="recall")
    op.drop_table("recall")
