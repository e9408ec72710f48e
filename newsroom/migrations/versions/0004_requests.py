"""Requests from Dezernate and Ämter to the communications office.

Revision ID: 0004
Revises: 0003
Create Date: 2026-11-25

campaign_request: one row per request (who asks, topic, desired date or window, channels,
draft text, links), its state (submitted, asked_back, resubmitted, accepted, declined),
the question asked back and the answer, the decline reason, the campaign it became, the
Prefect run carrying it and the notifications already sent.
campaign_request_image: the attached images (file under the data dir, alt text).
"""

from collections.abc import Sequence

import sqlalchemy as sa
from alembic import op

revision: str = "0004"
down_revision: str | Sequence[str] | None = "0003"
branch_labels: str | Sequence[str] | None = None
depends_on: str | Sequence[str] | None = None

REQUEST_STATUSES = ("submitted", "asked_back", "resubmitted", "accepted", "declined")
REQUESTER_KINDS = ("portfolio", "office")


def one_of(column: str, values: Sequence[str]) -> str:
    return f"{column} IN ({', '.join(repr(v) for v in values)})"


def upgrade() -> None:
    op.create_table(
        "campaign_request",
        sa.Column("id", sa.Integer(), nullable=False),
        sa.Column("requester_kind", sa.String(), nullable=False),
        sa.Column("requester_id", sa.String(), nullable=False),
        sa.Column("title", sa.String(), nullable=False),
        sa.Column("topic", sa.String(), nullable=False),
        sa.Column("desired_from", sa.Date(), nullable=False),
        sa.Column("desired_to", sa.Date(), nullable=True),
        sa.Column("desired_time", sa.String(), nullable=True),
        sa.Column("channels", sa.JSON(), nullable=False),
        sa.Column("text", sa.Text(), nullable=False),
        sa.Column("hashtags", sa.JSON(), nullable=False),
        sa.Column("links", sa.JSON(), nullable=False),
        sa.Column("notes", sa.Text(), nullable=False),
        sa.Column("contact_name", sa.String(), nullable=False),
        sa.Column("contact_email", sa.String(), nullable=False),
        sa.Column("status", sa.String(), nullable=False),
        sa.Column("revision", sa.Integer(), nullable=False),
        sa.Column("question", sa.Text(), nullable=True),
        sa.Column("answer", sa.Text(), nullable=True),
        sa.Column("reason", sa.Text(), nullable=True),
        sa.Column("decided_by", sa.String(), nullable=True),
        sa.Column("decided_at", sa.DateTime(timezone=True), nullable=True),
        sa.Column("campaign_id", sa.String(), nullable=True),
        sa.Column("campaign_file", sa.String(), nullable=True),
        sa.Column("flow_run_id", sa.String(), nullable=True),
        sa.Column("notified", sa.JSON(), nullable=False),
        sa.Column("invite_nonce", sa.String(), nullable=False),
        sa.Column("created_at", sa.DateTime(timezone=True), nullable=False),
        sa.Column("updated_at", sa.DateTime(timezone=True), nullable=False),
        sa.CheckConstraint(one_of("status", REQUEST_STATUSES),
                           name=op.f("ck_campaign_request_status")),
        sa.CheckConstraint(one_of("requester_kind", REQUESTER_KINDS),
                           name=op.f("ck_campaign_request_requester_kind")),
        sa.PrimaryKeyConstraint("id", name=op.f("pk_campaign_request")),
    )
    op.create_index(op.f("ix_campaign_request_requester_id"), "campaign_request",
                    ["requester_id"], unique=False)
    op.create_index(op.f("ix_campaign_request_status"), "campaign_request", ["status"],
                    unique=False)
    op.create_table(
        "campaign_request_image",
        sa.Column("id", sa.Integer(), nullable=False),
        sa.Column("request_id", sa.Integer(), nullable=False),
        sa.Column("position", sa.Integer(), nullable=False),
        sa.Column("filename", sa.String(), nullable=False),
        sa.Column("stored_path", sa.String(), nullable=False),
        sa.Column("content_type", sa.String(), nullable=False),
        sa.Column("size", sa.Integer(), nullable=False),
        sa.Column("sha256", sa.String(), nullable=False),
        sa.Column("alt", sa.Text(), nullable=False),
        sa.Column("created_at", sa.DateTime(timezone=True), nullable=False),
        sa.ForeignKeyConstraint(["request_id"], ["campaign_request.id"],
                                name=op.f("fk_campaign_request_image_request_id_campaign_request")),
        sa.PrimaryKeyConstraint("id", name=op.f("pk_campaign_request_image")),
        sa.UniqueConstraint("request_id", "position",
                            name=op.f("uq_campaign_request_image_request_id_position")),
    )
    op.create_index(op.f("ix_campaign_request_image_request_id"), "campaign_request_image",
                    ["request_id"], unique=False)


def downgrade() -> None:
    op.drop_index(op.f("ix_campaign_request_image_request_id"),
                  table_name="campaign_request_image")
    op.drop_table("campaign_request_image")
    op.drop_index(op.f("ix_campaign_request_status"), table_name="campaign_request")
    op.drop_index(op.f("ix_campaign_request_requester_id"), table_name="campaign_request")
    op.drop_table("campaign_request")
