"""One open handoff per conversation; a claim token on care messages.

Revision ID: 0005
Revises: 0004

Two concurrent handoff requests could both open a handoff for one conversation: a partial unique
index now refuses the second. Duplicates already stored are closed first (outcome `duplicate`),
keeping the one an agent has accepted, else the oldest request. `care_messages.claim_token` lets
a scheduler claim due messages with one UPDATE and read back exactly the rows it claimed.
"""

from __future__ import annotations

from datetime import datetime, timezone

import sqlalchemy as sa
from alembic import op

revision = "0005"
down_revision = "0004"
branch_labels = None
depends_on = None

OPEN_HANDOFF = "state <> 'closed'"  # a copy: migrations never import the models they predate
INDEX = "ix_handoffs_one_open_per_conversation"

handoffs = sa.table(
    "handoffs",
    sa.column("id", sa.Integer()),
    sa.column("conversation_id", sa.String()),
    sa.column("state", sa.String()),
    sa.column("outcome", sa.String()),
    sa.column("closed_at", sa.DateTime()),
)


def upgrade() -> None:
    _close_duplicate_open_handoffs()
    op.create_index(
        INDEX,
        "handoffs",
        ["conversation_id"],
        unique=True,
        sqlite_where=sa.text(OPEN_HANDOFF),
        postgresql_where=sa.text(OPEN_HANDOFF),
    )
    # Nullable add_column works in place on SQLite: no batch copy of the outbox.
    op.add_column("care_messages", sa.Column("claim_token", sa.String(length=32), nullable=True))


def _close_duplicate_open_handoffs() -> None:
    """Close every open handoff but one per conversation: the active one, else the oldest."""
    keeper = handoffs.alias("keeper")
    kept = (
        sa.select(keeper.c.id)
        .where(keeper.c.conversation_id == handoffs.c.conversation_id, keeper.c.state != "closed")
        .order_by(sa.case((keeper.c.state == "active", 0), else_=1), keeper.c.id)
        .limit(1)
        .scalar_subquery()
    )
    now = datetime.now(timezone.utc).replace(tzinfo=None)  # stored as naive UTC
    op.execute(
        handoffs.update()
        .where(handoffs.c.state != "closed", handoffs.c.id != kept)
        .values(state="closed", outcome="duplicate", closed_at=now)
    )


def downgrade() -> None:
    with op.batch_alter_table("care_messages", schema=None) as batch_op:
        batch_op.drop_column("claim_token")
    op.drop_index(INDEX, table_name="handoffs")
