"""The web chat's mailbox and presence leases.

Revision ID: 0008
Revises: 0007
"""

from __future__ import annotations

import sqlalchemy as sa
from alembic import op

revision = "0008"
down_revision = "0007"
branch_labels = None
depends_on = None


def upgrade() -> None:
    op.create_table(
        "webchat_messages",
        sa.Column("id", sa.Integer(), nullable=False),
        sa.Column("session_id", sa.String(length=64), nullable=False),
        sa.Column("sender", sa.String(length=8), nullable=False),
        sa.Column("payload", sa.JSON(), nullable=False),
        sa.Column("created_at", sa.DateTime(), nullable=False),
        sa.Column("delivered_at", sa.DateTime(), nullable=True),
        sa.CheckConstraint("sender IN ('user', 'bot')", name=op.f("ck_webchat_messages_sender")),
        sa.PrimaryKeyConstraint("id", name=op.f("pk_webchat_messages")),
    )
    op.create_index("ix_webchat_messages_session_id_id", "webchat_messages", ["session_id", "id"])
    op.create_table(
        "webchat_presence",
        sa.Column("session_id", sa.String(length=64), nullable=False),
        sa.Column("connected_until", sa.DateTime(), nullable=False),
        sa.PrimaryKeyConstraint("session_id", name=op.f("pk_webchat_presence")),
    )


def downgrade() -> None:
    op.drop_table("webchat_presence")
    op.drop_index("ix_webchat_messages_session_id_id", table_name="webchat_messages")
    op.drop_table("webchat_messages")
