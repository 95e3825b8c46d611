"""Exactly once under faults (issue 18): deliveries of care messages, keyed ledger entries.

`care_deliveries` holds one row per outbox row that reached a customer, written by the care
action before it composes the message; a second trigger of the row finds it and says nothing,
in any conversation, on any channel, in any session. Rows sent before this revision have none:
the conversation's own history still guards those (the action's earlier check).

`points_ledger.idempotency_key` with a partial unique index (customer, key) makes a birthday
gift and a confirmed redemption happen once. The birthday gifts already written get their key
("birthday_gift:<period>", the entry's reason): the oldest of each customer and period, so a
duplicate the old check-then-insert let through stays as it is (a bookkeeping fact) and no
later path can add a third.

Revision ID: 0018
Revises: 0017
"""

from __future__ import annotations

import sqlalchemy as sa
from alembic import op

revision = "0018"
down_revision = "0017"
branch_labels = None
depends_on = None

KEYED_ENTRY = "idempotency_key IS NOT NULL"  # a copy: migrations never import the models
LEDGER_INDEX = "ix_points_ledger_once"
DELIVERY_INDEX = "ix_care_deliveries_conversation_id"
FIRST_BIRTHDAY_GIFTS = """
UPDATE points_ledger SET idempotency_key = reason
WHERE reason LIKE 'birthday_gift:%'
  AND id = (
    SELECT MIN(earlier.id) FROM points_ledger AS earlier
    WHERE earlier.customer_id = points_ledger.customer_id AND earlier.reason = points_ledger.reason
  )
"""


def upgrade() -> None:
    op.create_table(
        "care_deliveries",
        sa.Column("care_message_id", sa.Integer(), nullable=False),
        sa.Column("conversation_id", sa.String(length=64), nullable=False),
        sa.Column("channel", sa.String(length=16), nullable=False),
        sa.Column("delivered_at", sa.DateTime(), nullable=False),
        sa.CheckConstraint("channel IN ('web', 'wechat')", name=op.f("ck_care_deliveries_channel")),
        sa.ForeignKeyConstraint(
            ["care_message_id"],
            ["care_messages.id"],
            name=op.f("fk_care_deliveries_care_message_id_care_messages"),
            ondelete="CASCADE",
        ),
        sa.PrimaryKeyConstraint("care_message_id", name=op.f("pk_care_deliveries")),
    )
    op.create_index(DELIVERY_INDEX, "care_deliveries", ["conversation_id"])
    # Nullable add_column works in place on SQLite: no batch copy of the ledger.
    op.add_column(
        "points_ledger", sa.Column("idempotency_key", sa.String(length=64), nullable=True)
    )
    op.execute(FIRST_BIRTHDAY_GIFTS)
    op.create_index(
        LEDGER_INDEX,
        "points_ledger",
        ["customer_id", "idempotency_key"],
        unique=True,
        sqlite_where=sa.text(KEYED_ENTRY),
        postgresql_where=sa.text(KEYED_ENTRY),
    )


def downgrade() -> None:
    op.drop_index(LEDGER_INDEX, table_name="points_ledger")
    with op.batch_alter_table("points_ledger", schema=None) as batch_op:
        batch_op.drop_column("idempotency_key")
    op.drop_index(DELIVERY_INDEX, table_name="care_deliveries")
    op.drop_table("care_deliveries")
