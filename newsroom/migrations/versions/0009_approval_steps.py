"""Approval chains: each request belongs to one step of the campaign's chain.

Revision ID: 0009
Revises: 0008
Create Date: 2026-12-07

approval_request.step: the step of the approval chain the request asks for (0: the
first; every request before this revision belongs to the one step a campaign had). The
unique key becomes (occurrence, person, bundle, step), so that an admin may decide
several steps of the same bundle.
"""

from collections.abc import Sequence

import sqlalchemy as sa
from alembic import op

revision: str = "0009"
down_revision: str | Sequence[str] | None = "0008"
branch_labels: str | Sequence[str] | None = None
depends_on: str | Sequence[str] | None = None

_OLD = "uq_approval_request_occurrence_id_person_id_bundle_hash"
_NEW = "uq_approval_request_occurrence_id_person_id_bundle_hash_step"


def upgrade() -> None:
    # approval_request has no triggers: batch mode may copy the table on SQLite.
    with op.batch_alter_table("approval_request") as batch:
        batch.add_column(sa.Column("step", sa.Integer(), server_default="0", nullable=False))
        batch.drop_constraint(op.f(_OLD), type_="unique")
        batch.create_unique_constraint(
            op.f(_NEW), ["occurrence_id", "person_id", "bundle_hash", "step"])


def downgrade() -> None:
    with op.batch_alter_table("approval_request") as batch:
        batch.drop_constraint(op.f(_NEW), type_="unique")
        batch.create_unique_constraint(op.f(_OLD), ["occurrence_id", "person_id", "bundle_hash"])
        batch.drop_column("step")
