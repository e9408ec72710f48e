"""Publications: who holds the claim, and whether a request may have left.

Revision ID: 0007
Revises: 0006
Create Date: 2026-12-03

publication.claim_token: a random token per "publishing" claim; a claim taken over
(compare-and-set on the token) is no longer the first claimant's to send or hand back.
publication.send_started_at: from when a request may have gone to the network. Armed
publications get it just before their second, one transaction per burst; a publication
"publishing" without it provably never left and is sent by the next run instead of being
handed to a person as "unknown". Rows "publishing" before this revision may have been
sent: they get their reservation time, so nothing changes for them.
"""

from collections.abc import Sequence

import sqlalchemy as sa
from alembic import op

revision: str = "0007"
down_revision: str | Sequence[str] | None = "0006"
branch_labels: str | Sequence[str] | None = None
depends_on: str | Sequence[str] | None = None


def upgrade() -> None:
    op.add_column("publication", sa.Column("claim_token", sa.String(), nullable=True))
    op.add_column("publication", sa.Column("send_started_at", sa.DateTime(timezone=True),
                                           nullable=True))
    op.execute("UPDATE publication SET send_started_at = reserved_at "
               "WHERE status = 'publishing'")


def downgrade() -> None:
    # SQLite >= 3.35 drops a column in place; PostgreSQL too.
    op.execute("ALTER TABLE publication DROP COLUMN send_started_at")
    op.execute("ALTER TABLE publication DROP COLUMN claim_token")
