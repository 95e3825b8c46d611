"""The log consumer reconciles the interaction log from Rasa's tracker store (issue 18).

`reconcile_watermarks` keeps, per tracker database, the id up to which every tracker event is
known to be in the interaction log, so a restarted consumer does not read the whole tracker
store again (bot/reconcile.py).

Revision ID: 0019
Revises: 0018
"""

from __future__ import annotations

import sqlalchemy as sa
from alembic import op

revision = "0019"
down_revision = "0018"
branch_labels = None
depends_on = None


def upgrade() -> None:
    op.create_table(
        "reconcile_watermarks",
        sa.Column("source", sa.String(length=255), nullable=False),
        sa.Column("event_id", sa.BigInteger(), nullable=False),
        sa.Column("updated_at", sa.DateTime(), nullable=False),
        sa.PrimaryKeyConstraint("source", name=op.f("pk_reconcile_watermarks")),
    )


def downgrade() -> None:
    op.drop_table("reconcile_watermarks")
