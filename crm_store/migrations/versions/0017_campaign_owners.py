"""Campaigns get an owner (issue 16, docs/campaigns.md "Who switches a campaign on"): a daily cap
per campaign, the most messages its planning writes in one day (NULL: no cap).

On/off is the existing `status` (`active` / `paused`). Rows already there keep their status, so
an upgraded installation sends what it sent before; the cap starts empty (no cap) for the same
reason. New installations create their campaigns switched off (crm_store.campaigns).

Revision ID: 0017
Revises: 0016
"""

from __future__ import annotations

import sqlalchemy as sa
from alembic import op

revision = "0017"
down_revision = "0016"
branch_labels = None
depends_on = None


def upgrade() -> None:
    with op.batch_alter_table("campaigns") as batch:
        batch.add_column(sa.Column("daily_cap", sa.Integer(), nullable=True))
        batch.create_check_constraint("daily_cap", "daily_cap >= 0")


def downgrade() -> None:
    with op.batch_alter_table("campaigns") as batch:
        batch.drop_constraint("daily_cap", type_="check")
        batch.drop_column("daily_cap")
