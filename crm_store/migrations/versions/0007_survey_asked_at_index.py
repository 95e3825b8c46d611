"""Survey responses: an index on asked_at, for reports over a date range of all customers.

Revision ID: 0007
Revises: 0006
"""

from __future__ import annotations

from alembic import op

revision = "0007"
down_revision = "0006"
branch_labels = None
depends_on = None


def upgrade() -> None:
    op.create_index("ix_survey_responses_asked_at", "survey_responses", ["asked_at"])


def downgrade() -> None:
    op.drop_index("ix_survey_responses_asked_at", table_name="survey_responses")
