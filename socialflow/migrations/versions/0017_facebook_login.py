"""Facebook Login: the Page an account is linked to; connect attempts (state, PKCE, outcome)

Revision ID: 0017
Revises: 0016
Create Date: 2026-12-07 23:40:00

Accounts connected through Facebook Login are reached through their Facebook Page: its id
(``instagram_account.page_id``, which webhooks may send as ``entry.id``) and name are kept.
``instagram_connect_attempt`` is one run of a connect flow: the signed state names it, it is
spent by the first callback (single use), it keeps the PKCE verifier server-side, and it
records how the flow ended for the web app's landing page.
"""

from __future__ import annotations

from collections.abc import Sequence

import sqlalchemy as sa
from alembic import op
from sqlalchemy.dialects import postgresql

import socialflow.core.db

revision: str = "0017"
down_revision: str | None = "0016"
branch_labels: str | Sequence[str] | None = None
depends_on: str | Sequence[str] | None = None


def upgrade() -> None:
    with op.batch_alter_table("instagram_account") as batch:
        batch.add_column(sa.Column("page_id", sa.String(length=64), nullable=True))
        batch.add_column(
            sa.Column("page_name", sa.String(length=200), nullable=False, server_default="")
        )
    op.create_index("ix_instagram_account_page_id", "instagram_account", ["page_id"])
    op.create_table(
        "instagram_connect_attempt",
        sa.Column("id", sa.Uuid(), nullable=False),
        sa.Column("workspace_id", sa.Uuid(), nullable=False),
        sa.Column("user_id", sa.Uuid(), nullable=False),
        sa.Column("login_kind", sa.String(length=20), nullable=False),
        sa.Column("redirect_uri", sa.Text(), nullable=False),
        sa.Column("code_verifier", sa.String(length=128), nullable=True),
        sa.Column("status", sa.String(length=20), nullable=False),
        sa.Column(
            "accounts",
            sa.JSON().with_variant(postgresql.JSONB(astext_type=sa.Text()), "postgresql"),
            nullable=False,
        ),
        sa.Column("error_code", sa.String(length=60), nullable=True),
        sa.Column("error_message", sa.Text(), nullable=True),
        sa.Column("expires_at", socialflow.core.db.UTCDateTime(timezone=True), nullable=False),
        sa.Column("finished_at", socialflow.core.db.UTCDateTime(timezone=True), nullable=True),
        sa.Column("created_at", socialflow.core.db.UTCDateTime(timezone=True), nullable=False),
        sa.PrimaryKeyConstraint("id", name=op.f("pk_instagram_connect_attempt")),
    )
    op.create_index(
        "ix_instagram_connect_attempt_workspace_id", "instagram_connect_attempt", ["workspace_id"]
    )


def downgrade() -> None:
    op.drop_index(
        "ix_instagram_connect_attempt_workspace_id", table_name="instagram_connect_attempt"
    )
    op.drop_table("instagram_connect_attempt")
    op.drop_index("ix_instagram_account_page_id", table_name="instagram_account")
    with op.batch_alter_table("instagram_account") as batch:
        batch.drop_column("page_name")
        batch.drop_column("page_id")
