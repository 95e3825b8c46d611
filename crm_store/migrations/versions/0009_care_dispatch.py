"""Care messages: the win-back outcome (returned within 30 days or lapsed) and when it was set.

Revision ID: 0009
Revises: 0008
"""

from __future__ import annotations

import sqlalchemy as sa
from alembic import op

revision = "0009"
down_revision = "0008"
branch_labels = None
depends_on = None


def upgrade() -> None:
    with op.batch_alter_table("care_messages") as batch:
        batch.add_column(sa.Column("outcome", sa.String(length=8), nullable=True))
        batch.add_column(sa.Column("outcome_at", sa.DateTime(), nullable=True))


def downgrade() -> None:
    with op.batch_alter_table("care_messages") as batch:
        batch.drop_column("outcome_at")
        batch.drop_column("outcome")
