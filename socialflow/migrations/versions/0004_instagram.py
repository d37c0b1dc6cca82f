"""instagram accounts and send ledger

Revision ID: 0004
Revises: 0003
Create Date: 2026-11-26 17:20:00
"""

from __future__ import annotations

from collections.abc import Sequence

import sqlalchemy as sa
from alembic import op
from sqlalchemy.dialects import postgresql

import socialflow.core.db

revision: str = "0004"
down_revision: str | None = "0003"
branch_labels: str | Sequence[str] | None = None
depends_on: str | Sequence[str] | None = None

_JSON = sa.JSON().with_variant(postgresql.JSONB(astext_type=sa.Text()), "postgresql")


def _ts(name: str, nullable: bool) -> sa.Column[object]:
    return sa.Column(name, socialflow.core.db.UTCDateTime(timezone=True), nullable=nullable)


def upgrade() -> None:
    op.create_table(
        "instagram_account",
        sa.Column("id", sa.Uuid(), nullable=False),
        sa.Column("workspace_id", sa.Uuid(), nullable=False),
        sa.Column("ig_user_id", sa.String(length=64), nullable=False),
        sa.Column("username", sa.String(length=100), nullable=False),
        sa.Column("login_kind", sa.String(length=20), nullable=False),
        sa.Column("credential_id", sa.Uuid(), nullable=True),
        sa.Column("mode", sa.String(length=20), nullable=False),
        sa.Column("token_status", sa.String(length=20), nullable=False),
        _ts("token_expires_at", True),
        _ts("token_refreshed_at", True),
        sa.Column("subscribed_fields", _JSON, nullable=False),
        sa.Column("last_error", sa.Text(), nullable=True),
        _ts("created_at", False),
        _ts("updated_at", False),
        sa.PrimaryKeyConstraint("id", name=op.f("pk_instagram_account")),
        sa.UniqueConstraint(
            "workspace_id", "ig_user_id", name=op.f("uq_instagram_account_workspace_id")
        ),
    )
    with op.batch_alter_table("instagram_account", schema=None) as batch_op:
        batch_op.create_index(
            batch_op.f("ix_instagram_account_ig_user_id"), ["ig_user_id"], unique=False
        )
        batch_op.create_index(
            batch_op.f("ix_instagram_account_workspace_id"), ["workspace_id"], unique=False
        )

    op.create_table(
        "outbox_message",
        sa.Column("id", sa.Uuid(), nullable=False),
        sa.Column("idempotency_key", sa.String(length=128), nullable=False),
        sa.Column("workspace_id", sa.Uuid(), nullable=True),
        sa.Column("account_id", sa.Uuid(), nullable=True),
        sa.Column("flow_id", sa.Uuid(), nullable=True),
        sa.Column("flow_version_id", sa.Uuid(), nullable=True),
        sa.Column("execution_id", sa.Uuid(), nullable=True),
        sa.Column("node_id", sa.String(length=64), nullable=False),
        sa.Column("action", sa.String(length=40), nullable=False),
        sa.Column("target", sa.String(length=200), nullable=False),
        sa.Column("payload", _JSON, nullable=False),
        sa.Column("status", sa.String(length=20), nullable=False),
        sa.Column("sandbox", sa.Boolean(), nullable=False),
        sa.Column("policy_verdict", sa.String(length=20), nullable=False),
        sa.Column("policy_reason", sa.Text(), nullable=True),
        _ts("scheduled_for", True),
        sa.Column("attempts", sa.Integer(), nullable=False),
        sa.Column("response", _JSON, nullable=True),
        sa.Column("error_code", sa.String(length=40), nullable=True),
        sa.Column("error_message", sa.Text(), nullable=True),
        _ts("created_at", False),
        _ts("updated_at", False),
        _ts("sent_at", True),
        sa.PrimaryKeyConstraint("id", name=op.f("pk_outbox_message")),
        sa.UniqueConstraint("idempotency_key", name=op.f("uq_outbox_message_idempotency_key")),
    )
    with op.batch_alter_table("outbox_message", schema=None) as batch_op:
        batch_op.create_index(
            "ix_outbox_message_account_status",
            ["account_id", "status", "scheduled_for"],
            unique=False,
        )
        batch_op.create_index(batch_op.f("ix_outbox_message_flow_id"), ["flow_id"], unique=False)
        batch_op.create_index(batch_op.f("ix_outbox_message_status"), ["status"], unique=False)
        batch_op.create_index(
            batch_op.f("ix_outbox_message_workspace_id"), ["workspace_id"], unique=False
        )


def downgrade() -> None:
    op.drop_table("outbox_message")
    op.drop_table("instagram_account")
