"""Crisis mode: the crisis table, and on-demand triggers as their own occurrences.

Revision ID: 0003
Revises: 0002
Create Date: 2026-12-07

crisis: one row per crisis message (campaign, variables, who started and ended it, the
trigger key that makes a retried trigger find its row). While a row has no ``ended_at``,
non-crisis posts are held.
occurrence.trigger_key: "" for dated occurrences; a crisis trigger's key otherwise, so a
crisis campaign triggered twice on one day has two occurrences. The unique key of an
occurrence becomes (campaign_id, occurrence_date, trigger_key).
"""

from collections.abc import Sequence

import sqlalchemy as sa
from alembic import op

revision: str = "0003"
down_revision: str | Sequence[str] | None = "0002"
branch_labels: str | Sequence[str] | None = None
depends_on: str | Sequence[str] | None = None


def upgrade() -> None:
    with op.batch_alter_table("occurrence") as batch:
        batch.add_column(sa.Column("trigger_key", sa.String(), server_default="",
                                   nullable=False))
        batch.drop_constraint(op.f("uq_occurrence_campaign_id_occurrence_date"), type_="unique")
        batch.create_unique_constraint(
            op.f("uq_occurrence_campaign_id_occurrence_date_trigger_key"),
            ["campaign_id", "occurrence_date", "trigger_key"])
    op.create_table(
        "crisis",
        sa.Column("id", sa.Integer(), nullable=False),
        sa.Column("trigger_key", sa.String(), nullable=False),
        sa.Column("campaign_id", sa.String(), nullable=False),
        sa.Column("occurrence_id", sa.Integer(), nullable=True),
        sa.Column("variables", sa.JSON(), nullable=False),
        sa.Column("started_at", sa.DateTime(timezone=True), nullable=False),
        sa.Column("started_by", sa.String(), nullable=False),
        sa.Column("approver", sa.String(), nullable=True),
        sa.Column("ended_at", sa.DateTime(timezone=True), nullable=True),
        sa.Column("ended_by", sa.String(), nullable=True),
        sa.ForeignKeyConstraint(["campaign_id"], ["campaign.id"],
                                name=op.f("fk_crisis_campaign_id_campaign")),
        sa.ForeignKeyConstraint(["occurrence_id"], ["occurrence.id"],
                                name=op.f("fk_crisis_occurrence_id_occurrence")),
        sa.PrimaryKeyConstraint("id", name=op.f("pk_crisis")),
        sa.UniqueConstraint("trigger_key", name=op.f("uq_crisis_trigger_key")),
    )
    op.create_index(op.f("ix_crisis_campaign_id"), "crisis", ["campaign_id"], unique=False)
    op.create_index(op.f("ix_crisis_ended_at"), "crisis", ["ended_at"], unique=False)


def downgrade() -> None:
    op.drop_index(op.f("ix_crisis_ended_at"), table_name="crisis")
    op.drop_index(op.f("ix_crisis_campaign_id"), table_name="crisis")
    op.drop_table("crisis")
    with op.batch_alter_table("occurrence") as batch:
        batch.drop_constraint(op.f("uq_occurrence_campaign_id_occurrence_date_trigger_key"),
                              type_="unique")
        batch.create_unique_constraint(op.f("uq_occurrence_campaign_id_occurrence_date"),
                                       ["campaign_id", "occurrence_date"])
        batch.drop_column("trigger_key")
