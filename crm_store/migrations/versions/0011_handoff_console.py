"""The staff console: handoff priority and how to reach the customer, notes, snippets, messages.

Revision ID: 0011
Revises: 0010

`handoffs` gains the queue's priority, the Rasa sender id and output channel an agent's reply
goes through, and when the customer was told that nobody has picked up yet. Agents' internal
notes and saved quick replies get their own tables. Tickets gain the kind `message`: what a
customer leaves instead of waiting for an agent (or outside staffed hours).
"""

from __future__ import annotations

import sqlalchemy as sa
from alembic import op

revision = "0011"
down_revision = "0010"
branch_labels = None
depends_on = None

KINDS_BEFORE = "kind IN ('complaint', 'return', 'refund')"
KINDS_AFTER = "kind IN ('complaint', 'return', 'refund', 'message')"


def upgrade() -> None:
    with op.batch_alter_table("handoffs") as batch:
        batch.add_column(
            sa.Column("priority", sa.SmallInteger(), nullable=False, server_default=sa.text("0"))
        )
        batch.add_column(sa.Column("sender_id", sa.String(length=255), nullable=True))
        batch.add_column(sa.Column("output_channel", sa.String(length=32), nullable=True))
        batch.add_column(sa.Column("timeout_notified_at", sa.DateTime(), nullable=True))
    _set_ticket_kinds(KINDS_AFTER)
    _create_notes()
    _create_snippets()


def _set_ticket_kinds(condition: str) -> None:
    with op.batch_alter_table("tickets") as batch:
        batch.drop_constraint(op.f("ck_tickets_kind"), type_="check")
        batch.create_check_constraint("kind", sa.text(condition))


def _create_notes() -> None:
    op.create_table(
        "handoff_notes",
        sa.Column("id", sa.Integer(), nullable=False),
        sa.Column("handoff_id", sa.Integer(), nullable=False),
        sa.Column("author_id", sa.Integer(), nullable=True),
        sa.Column("text", sa.Text(), nullable=False),
        sa.Column("created_at", sa.DateTime(), nullable=False),
        sa.ForeignKeyConstraint(
            ["author_id"],
            ["staff_users.id"],
            name=op.f("fk_handoff_notes_author_id_staff_users"),
            ondelete="SET NULL",
        ),
        sa.ForeignKeyConstraint(
            ["handoff_id"],
            ["handoffs.id"],
            name=op.f("fk_handoff_notes_handoff_id_handoffs"),
            ondelete="CASCADE",
        ),
        sa.PrimaryKeyConstraint("id", name=op.f("pk_handoff_notes")),
    )
    op.create_index(op.f("ix_handoff_notes_handoff_id"), "handoff_notes", ["handoff_id"])


def _create_snippets() -> None:
    op.create_table(
        "reply_snippets",
        sa.Column("id", sa.Integer(), nullable=False),
        sa.Column("title", sa.String(length=64), nullable=False),
        sa.Column("text", sa.Text(), nullable=False),
        sa.Column("created_by", sa.Integer(), nullable=True),
        sa.Column("created_at", sa.DateTime(), nullable=False),
        sa.ForeignKeyConstraint(
            ["created_by"],
            ["staff_users.id"],
            name=op.f("fk_reply_snippets_created_by_staff_users"),
            ondelete="SET NULL",
        ),
        sa.PrimaryKeyConstraint("id", name=op.f("pk_reply_snippets")),
        sa.UniqueConstraint("title", name=op.f("uq_reply_snippets_title")),
    )


def downgrade() -> None:
    op.drop_table("reply_snippets")
    op.drop_index(op.f("ix_handoff_notes_handoff_id"), table_name="handoff_notes")
    op.drop_table("handoff_notes")
    op.execute(sa.text("DELETE FROM tickets WHERE kind = 'message'"))
    _set_ticket_kinds(KINDS_BEFORE)
    with op.batch_alter_table("handoffs") as batch:
        batch.drop_column("timeout_notified_at")
        batch.drop_column("output_channel")
        batch.drop_column("sender_id")
        batch.drop_column("priority")
