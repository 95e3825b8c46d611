"""Interactions: an idempotency key, so a redelivered turn is stored once.

Revision ID: 0003
Revises: 0002
"""

from __future__ import annotations

import sqlalchemy as sa
from alembic import op

revision = "0003"
down_revision = "0002"
branch_labels = None
depends_on = None


def upgrade() -> None:
    # add_column and CREATE UNIQUE INDEX work in place on SQLite too: no batch copy of a table
    # that holds every turn ever logged.
    op.add_column("interactions", sa.Column("event_key", sa.String(length=96), nullable=True))
    op.create_index(op.f("ix_interactions_event_key"), "interactions", ["event_key"], unique=True)


def downgrade() -> None:
    op.drop_index(op.f("ix_interactions_event_key"), table_name="interactions")
    with op.batch_alter_table("interactions", schema=None) as batch_op:
        batch_op.drop_column("event_key")
