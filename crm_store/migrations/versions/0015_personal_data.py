"""Personal data (issue 15, docs/personal-data.md): consent history per change and channel, and
the erasure mark of a forgotten customer.

The history starts with one row per stored consent (its current state, `channel` unknown), so
the dashboard's opt-outs read the same before and after the upgrade.

Revision ID: 0015
Revises: 0014
"""

from __future__ import annotations

import sqlalchemy as sa
from alembic import op

revision = "0015"
down_revision = "0014"
branch_labels = None
depends_on = None

CATEGORIES = "category IN ('care', 'follow_up', 'survey', 'offer')"


def upgrade() -> None:
    with op.batch_alter_table("customers") as batch:
        batch.add_column(sa.Column("erased_at", sa.DateTime(), nullable=True))
    op.create_table(
        "consent_changes",
        sa.Column("id", sa.Integer(), nullable=False),
        sa.Column("customer_id", sa.Integer(), nullable=False),
        sa.Column("category", sa.String(length=16), nullable=False),
        sa.Column("granted", sa.Boolean(), nullable=False),
        sa.Column("source", sa.String(length=32), nullable=False),
        sa.Column("channel", sa.String(length=16), nullable=True),
        sa.Column("changed_at", sa.DateTime(), nullable=False),
        sa.CheckConstraint(CATEGORIES, name=op.f("ck_consent_changes_category")),
        sa.ForeignKeyConstraint(
            ["customer_id"],
            ["customers.id"],
            name=op.f("fk_consent_changes_customer_id_customers"),
            ondelete="CASCADE",
        ),
        sa.PrimaryKeyConstraint("id", name=op.f("pk_consent_changes")),
    )
    op.create_index(
        "ix_consent_changes_customer_id_changed_at",
        "consent_changes",
        ["customer_id", "changed_at"],
    )
    op.create_index(
        "ix_consent_changes_withdrawn_at",
        "consent_changes",
        ["changed_at"],
        sqlite_where=sa.text("NOT granted"),
        postgresql_where=sa.text("NOT granted"),
    )
    op.execute(
        "INSERT INTO consent_changes (customer_id, category, granted, source, channel, changed_at) "
        "SELECT customer_id, category, granted, source, NULL, updated_at FROM consents"
    )


def downgrade() -> None:
    op.drop_index("ix_consent_changes_withdrawn_at", table_name="consent_changes")
    op.drop_index("ix_consent_changes_customer_id_changed_at", table_name="consent_changes")
    op.drop_table("consent_changes")
    with op.batch_alter_table("customers") as batch:
        batch.drop_column("erased_at")
