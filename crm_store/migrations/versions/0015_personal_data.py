"""Personal data (issue 15, docs/personal-data.md): consent history per change and channel, and
the erasure mark of a forgotten customer.

The history starts with one row per stored consent (its current state, `channel` unknown), so
the dashboard's opt-outs read the same before and after the upgrade. Phone numbers already in
the audit log are masked as `record_audit` masks them from now on (the rule is copied here, so
this migration does what it did whatever the masking becomes); a downgrade cannot unmask them.

Revision ID: 0015
Revises: 0014
"""

from __future__ import annotations

import re
from typing import Any

import sqlalchemy as sa
from alembic import op

revision = "0015"
down_revision = "0014"
branch_labels = None
depends_on = None

CATEGORIES = "category IN ('care', 'follow_up', 'survey', 'offer')"
MOBILE = re.compile(
    r"(?<![0-9A-Za-z])(?:(?:\+|00)86[ -]?)?(1[3-9]\d)[ -]?(\d{4})[ -]?(\d{4})(?![0-9A-Za-z])"
)
BATCH = 1000


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
    _mask_audit_phones()


def _masked(value: Any) -> Any:
    if isinstance(value, str):
        return MOBILE.sub(lambda m: f"{m.group(1)}****{m.group(3)}", value)
    if isinstance(value, dict):
        return {key: _masked(item) for key, item in value.items()}
    if isinstance(value, list):
        return [_masked(item) for item in value]
    return value


def _mask_audit_phones() -> None:
    """Rewrite the audit entries whose changes hold a mainland mobile, a batch at a time."""
    connection = op.get_bind()
    table = sa.table("audit_log", sa.column("id", sa.Integer), sa.column("changes", sa.JSON))
    last = 0
    while True:
        rows = connection.execute(
            sa.select(table.c.id, table.c.changes)
            .where(table.c.id > last)
            .order_by(table.c.id)
            .limit(BATCH)
        ).all()
        if not rows:
            return
        for row_id, changes in rows:
            masked = _masked(changes)
            if masked != changes:
                connection.execute(
                    table.update().where(table.c.id == row_id).values(changes=masked)
                )
        last = rows[-1][0]


def downgrade() -> None:
    op.drop_index("ix_consent_changes_withdrawn_at", table_name="consent_changes")
    op.drop_index("ix_consent_changes_customer_id_changed_at", table_name="consent_changes")
    op.drop_table("consent_changes")
    with op.batch_alter_table("customers") as batch:
        batch.drop_column("erased_at")
