"""Publications: which process's send journal tells whether its request left.

Revision ID: 0008
Revises: 0007
Create Date: 2026-12-07

publication.sent_by: the send journal (newsroom/send_journal.py) of the process that
marked the publication for sending. A publication marked and still "publishing" whose
process is gone and whose journal holds no line for it never left: the next run sends it
instead of handing it to a person as "unknown". Rows before this revision have none and
stay possibly sent.
"""

from collections.abc import Sequence

import sqlalchemy as sa
from alembic import op

revision: str = "0008"
down_revision: str | Sequence[str] | None = "0007"
branch_labels: str | Sequence[str] | None = None
depends_on: str | Sequence[str] | None = None


def upgrade() -> None:
    op.add_column("publication", sa.Column("sent_by", sa.String(), nullable=True))


def downgrade() -> None:
    op.execute("ALTER TABLE publication DROP COLUMN sent_by")
