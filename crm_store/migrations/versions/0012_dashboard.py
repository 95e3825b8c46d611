"""The manager dashboard: indexes for its date ranges, care message responses, customer summary.

Revision ID: 0012
Revises: 0011

Conversations, care messages and customer turns are read by date range (customer turns and
fallbacks through partial indexes the counts can answer from alone); a tier's customer ids come
from an index alone; withdrawn consents and the care messages whose responses are not recorded
yet have partial indexes by time. Care messages gain what
the customer did after them (reply, opt-out) once recorded, so a campaign's figures need no
join over every turn. customer_summary counts customer_metrics per tier, channel, segment and
stage; it is filled here from the metrics there are.
"""

from __future__ import annotations

import sqlalchemy as sa
from alembic import op

revision = "0012"
down_revision = "0011"
branch_labels = None
depends_on = None

CUSTOMER_TURN = "speaker = 'customer'"
FALLBACK_TURN = "intent = 'nlu_fallback'"
WITHDRAWN = "NOT granted"
UNRECORDED = "state = 'sent' AND responses_recorded_at IS NULL"
RESPONSE_COLUMNS = ("replied_at", "opted_out_at", "responses_recorded_at")
PARTIAL_INDEXES = (
    ("ix_interactions_customer_turns", "interactions", "occurred_at", CUSTOMER_TURN),
    ("ix_interactions_fallback_turns", "interactions", "occurred_at", FALLBACK_TURN),
    ("ix_consents_withdrawn_at", "consents", "updated_at", WITHDRAWN),
    ("ix_care_messages_unrecorded", "care_messages", "sent_at", UNRECORDED),
)
FILL_SUMMARY = """
INSERT INTO customer_summary (tier, preferred_channel, rfm_segment, lifecycle_stage,
                              customers, revenue_cents, clv_cents, computed_at)
SELECT c.tier, c.preferred_channel, m.rfm_segment, m.lifecycle_stage, count(*),
       sum(m.monetary_cents), sum(m.clv_cents), max(m.computed_at)
FROM customer_metrics m JOIN customers c ON c.id = m.customer_id
GROUP BY c.tier, c.preferred_channel, m.rfm_segment, m.lifecycle_stage
"""


def upgrade() -> None:
    op.create_index("ix_conversations_started_at", "conversations", ["started_at"])
    op.create_index("ix_care_messages_created_at", "care_messages", ["created_at"])
    op.create_index("ix_customers_tier_id", "customers", ["tier", "id"])
    with op.batch_alter_table("care_messages") as batch:
        for column in RESPONSE_COLUMNS:
            batch.add_column(sa.Column(column, sa.DateTime(), nullable=True))
    for name, table, column, condition in PARTIAL_INDEXES:
        where = {"sqlite_where": sa.text(condition), "postgresql_where": sa.text(condition)}
        op.create_index(name, table, [column], **where)
    _create_summary()


def _create_summary() -> None:
    op.create_table(
        "customer_summary",
        sa.Column("tier", sa.String(length=8), nullable=False),
        sa.Column("preferred_channel", sa.String(length=16), nullable=False),
        sa.Column("rfm_segment", sa.String(length=24), nullable=False),
        sa.Column("lifecycle_stage", sa.String(length=16), nullable=False),
        sa.Column("customers", sa.Integer(), nullable=False),
        sa.Column("revenue_cents", sa.BigInteger(), nullable=False),
        sa.Column("clv_cents", sa.BigInteger(), nullable=False),
        sa.Column("computed_at", sa.DateTime(), nullable=False),
        sa.PrimaryKeyConstraint(
            "tier",
            "preferred_channel",
            "rfm_segment",
            "lifecycle_stage",
            name=op.f("pk_customer_summary"),
        ),
    )
    op.execute(sa.text(FILL_SUMMARY))


def downgrade() -> None:
    op.drop_table("customer_summary")
    for name, table, _, _ in reversed(PARTIAL_INDEXES):
        op.drop_index(name, table_name=table)
    with op.batch_alter_table("care_messages") as batch:
        for column in reversed(RESPONSE_COLUMNS):
            batch.drop_column(column)
    op.drop_index("ix_customers_tier_id", table_name="customers")
    op.drop_index("ix_care_messages_created_at", table_name="care_messages")
    op.drop_index("ix_conversations_started_at", table_name="conversations")
