"""A held occurrence moved to a new time by the office.

Revision ID: 0005
Revises: 0004
Create Date: 2026-11-25

occurrence.moved_to: set by ``newsroom crisis reschedule`` for an occurrence a crisis
freeze held: channel -> new time (ISO 8601, UTC) for its posts not yet published; they
go out then instead of at the catalog's time (a new time is new content: the approvers
are asked again).
"""

from collections.abc import Sequence

import sqlalchemy as sa
from alembic import op

revision: str = "0005"
down_revision: str | Sequence[str] | None = "0004"
branch_labels: str | Sequence[str] | None = None
depends_on: str | Sequence[str] | None = None


def upgrade() -> None:
    with op.batch_alter_table("occurrence") as batch:
        batch.add_column(sa.Column("moved_to", sa.JSON(), nullable=True))


def downgrade() -> None:
    with op.batch_alter_table("occurrence") as batch:
        batch.drop_column("moved_to")
