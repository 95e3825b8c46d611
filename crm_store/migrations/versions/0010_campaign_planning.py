"""Campaign planning: indexes for the set-based candidate queries (crm_store/campaigns/).

Warranty reminders and care tips look order items up by the day their warranty ends; delivery
follow-ups look shipping events up by status and time. Without them both scan every row.

Revision ID: 0010
Revises: 0009
"""

from __future__ import annotations

from alembic import op

revision = "0010"
down_revision = "0009"
branch_labels = None
depends_on = None


def upgrade() -> None:
    op.create_index("ix_order_items_warranty_ends_on", "order_items", ["warranty_ends_on"])
    op.create_index(
        "ix_shipping_events_status_occurred_at", "shipping_events", ["status", "occurred_at"]
    )


def downgrade() -> None:
    op.drop_index("ix_shipping_events_status_occurred_at", table_name="shipping_events")
    op.drop_index("ix_order_items_warranty_ends_on", table_name="order_items")
