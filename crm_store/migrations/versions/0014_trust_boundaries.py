"""Trust boundaries (docs/security.md): REST back-end identities, staff login throttling and
session versions, single-use tokens, and one-time login codes kept in the CRM.

Revision ID: 0014
Revises: 0013
"""

from __future__ import annotations

import sqlalchemy as sa
from alembic import op

revision = "0014"
down_revision = "0013"
branch_labels = None
depends_on = None

OLD_KINDS = "kind IN ('web_user', 'web_session', 'wechat_openid', 'wechat_unionid')"
NEW_KINDS = "kind IN ('web_user', 'web_session', 'wechat_openid', 'wechat_unionid', 'rest_user')"


def upgrade() -> None:
    with op.batch_alter_table("channel_identities") as batch:
        batch.drop_constraint("kind", type_="check")
        batch.create_check_constraint("kind", NEW_KINDS)
    with op.batch_alter_table("staff_users") as batch:
        batch.add_column(
            sa.Column("failed_logins", sa.Integer(), nullable=False, server_default="0")
        )
        batch.add_column(sa.Column("locked_until", sa.DateTime(), nullable=True))
        batch.add_column(
            sa.Column("session_version", sa.Integer(), nullable=False, server_default="0")
        )
    op.create_table(
        "spent_tokens",
        sa.Column("scope", sa.String(length=16), nullable=False),
        sa.Column("key", sa.String(length=128), nullable=False),
        sa.Column("expires_at", sa.DateTime(), nullable=False),
        sa.PrimaryKeyConstraint("scope", "key", name=op.f("pk_spent_tokens")),
    )
    op.create_index(op.f("ix_spent_tokens_expires_at"), "spent_tokens", ["expires_at"])
    op.create_table(
        "login_codes",
        sa.Column("id", sa.Integer(), nullable=False),
        sa.Column("phone_key", sa.String(length=64), nullable=False),
        sa.Column("client", sa.String(length=128), nullable=False),
        sa.Column("customer_id", sa.Integer(), nullable=True),
        sa.Column("digest", sa.String(length=64), nullable=False),
        sa.Column("salt", sa.String(length=32), nullable=False),
        sa.Column("created_at", sa.DateTime(), nullable=False),
        sa.Column("expires_at", sa.DateTime(), nullable=False),
        sa.Column("attempts_left", sa.SmallInteger(), nullable=False),
        sa.Column("used_at", sa.DateTime(), nullable=True),
        sa.ForeignKeyConstraint(
            ["customer_id"],
            ["customers.id"],
            name=op.f("fk_login_codes_customer_id_customers"),
            ondelete="CASCADE",
        ),
        sa.PrimaryKeyConstraint("id", name=op.f("pk_login_codes")),
    )
    op.create_index(
        "ix_login_codes_phone_key_created_at", "login_codes", ["phone_key", "created_at"]
    )
    op.create_index("ix_login_codes_client_created_at", "login_codes", ["client", "created_at"])
    op.create_index(op.f("ix_login_codes_created_at"), "login_codes", ["created_at"])


def downgrade() -> None:
    op.drop_table("login_codes")
    op.drop_table("spent_tokens")
    with op.batch_alter_table("staff_users") as batch:
        batch.drop_column("session_version")
        batch.drop_column("locked_until")
        batch.drop_column("failed_logins")
    op.execute("DELETE FROM channel_identities WHERE kind = 'rest_user'")
    with op.batch_alter_table("channel_identities") as batch:
        batch.drop_constraint("kind", type_="check")
        batch.create_check_constraint("kind", OLD_KINDS)
