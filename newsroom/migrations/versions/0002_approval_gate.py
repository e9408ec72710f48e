"""Approval gate: the flow run waiting at it, its outcome, and reminder bookkeeping.

Revision ID: 0002
Revises: 0001
Create Date: 2026-11-30

occurrence: gate_bundle_hash (the bundle the gate asks about), flow_run_id (the Prefect
flow run paused at the gate), gate_outcome / gate_settled_at / escalated_at.
approval_request: notified_at (the message went out) and reminders_sent (how many of the
reminder marks have been dealt with), so that a re-run never notifies twice.
"""

from collections.abc import Sequence

import sqlalchemy as sa
from alembic import op

revision: str = "0002"
down_revision: str | Sequence[str] | None = "0001"
branch_labels: str | Sequence[str] | None = None
depends_on: str | Sequence[str] | None = None

GATE_OUTCOMES = ("approved", "rejected", "changes_requested", "cancelled", "escalated")


def upgrade() -> None:
    with op.batch_alter_table("occurrence") as batch:
        batch.add_column(sa.Column("gate_bundle_hash", sa.String(), nullable=True))
        batch.add_column(sa.Column("flow_run_id", sa.String(), nullable=True))
        batch.add_column(sa.Column("gate_outcome", sa.String(), nullable=True))
        batch.add_column(sa.Column("gate_settled_at", sa.DateTime(timezone=True), nullable=True))
        batch.add_column(sa.Column("escalated_at", sa.DateTime(timezone=True), nullable=True))
        batch.create_check_constraint(
            op.f("ck_occurrence_gate_outcome"),
            f"gate_outcome IN ({', '.join(repr(v) for v in GATE_OUTCOMES)})",
        )
    with op.batch_alter_table("approval_request") as batch:
        batch.add_column(sa.Column("notified_at", sa.DateTime(timezone=True), nullable=True))
        batch.add_column(
            sa.Column("reminders_sent", sa.Integer(), server_default="0", nullable=False)
        )


def downgrade() -> None:
    with op.batch_alter_table("approval_request") as batch:
        batch.drop_column("reminders_sent")
        batch.drop_column("notified_at")
    with op.batch_alter_table("occurrence") as batch:
        batch.drop_constraint(op.f("ck_occurrence_gate_outcome"), type_="check")
        batch.drop_column("escalated_at")
        batch.drop_column("gate_settled_at")
        batch.drop_column("gate_outcome")
        batch.drop_column("flow_run_id")
        batch.drop_column("gate_bundle_hash")
