"""Survey responses: the status `partial`, for a survey with some questions answered that was
not finished (each answer is now stored as it is given, issue 16).

Before this revision answers were written only when the survey ended, so a row still `asked`
normally has no score; one that has (written by hand or by an older tool) becomes `partial`,
which is what it is. A downgrade turns `partial` back into `asked` and keeps the answers: the
older code has no other status for an unfinished survey.

Revision ID: 0016
Revises: 0015
"""

from __future__ import annotations

from alembic import op

revision = "0016"
down_revision = "0015"
branch_labels = None
depends_on = None

OLD_STATUSES = "status IN ('asked', 'answered', 'declined')"
NEW_STATUSES = "status IN ('asked', 'partial', 'answered', 'declined')"
HAS_AN_ANSWER = "(csat IS NOT NULL OR nps IS NOT NULL OR comment IS NOT NULL)"


def upgrade() -> None:
    with op.batch_alter_table("survey_responses") as batch:
        batch.drop_constraint("status", type_="check")
        batch.create_check_constraint("status", NEW_STATUSES)
    op.execute(
        f"UPDATE survey_responses SET status = 'partial' WHERE status = 'asked' AND {HAS_AN_ANSWER}"
    )


def downgrade() -> None:
    op.execute("UPDATE survey_responses SET status = 'asked' WHERE status = 'partial'")
    with op.batch_alter_table("survey_responses") as batch:
        batch.drop_constraint("status", type_="check")
        batch.create_check_constraint("status", OLD_STATUSES)
