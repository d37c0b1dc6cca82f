"""broadcasts: a message to a segment of contacts and what became of each recipient

Revision ID: 0018
Revises: 0017
Create Date: 2026-12-08 00:30:00

``broadcast`` holds the message, the segment (as JSON, turned into SQL when read), the status,
the Prefect run and the cursor a resumed send starts after. ``broadcast_recipient`` is one row
per handled contact: sent, skipped with the reason, or failed; the ledger row of the send.
"""

from __future__ import annotations

from collections.abc import Sequence

import sqlalchemy as sa
from alembic import op
from sqlalchemy.dialects import postgresql

import socialflow.core.db

revision: str = "0018"
down_revision: str | None = "0017"
branch_labels: str | Sequence[str] | None = None
depends_on: str | Sequence[str] | None = None

_JSON = sa.JSON().with_variant(postgresql.JSONB(astext_type=sa.Text()), "postgresql")


def _ts(name: str, nullable: bool) -> sa.Column[object]:
    return sa.Column(name, socialflow.core.db.UTCDateTime(timezone=True), nullable=nullable)


def upgrade() -> None:
    op.create_table(
        "broadcast",
        sa.Column("id", sa.Uuid(), nullable=False),
        sa.Column("workspace_id", sa.Uuid(), nullable=False),
        sa.Column("account_id", sa.Uuid(), nullable=False),
        sa.Column("name", sa.String(length=100), nullable=False),
        sa.Column("text", sa.Text(), nullable=False),
        sa.Column("quick_replies", _JSON, nullable=False),
        sa.Column("buttons", _JSON, nullable=False),
        sa.Column("segment", _JSON, nullable=False),
        sa.Column("status", sa.String(length=20), nullable=False),
        _ts("scheduled_at", True),
        _ts("started_at", True),
        _ts("finished_at", True),
        sa.Column("prefect_flow_run_id", sa.Uuid(), nullable=True),
        sa.Column("cursor", sa.Uuid(), nullable=True),
        sa.Column("total", sa.Integer(), nullable=True),
        sa.Column("error", sa.String(length=300), nullable=True),
        sa.Column("created_by", sa.Uuid(), nullable=True),
        _ts("created_at", False),
        _ts("updated_at", False),
        sa.PrimaryKeyConstraint("id", name=op.f("pk_broadcast")),
    )
    op.create_index(
        "ix_broadcast_workspace_created", "broadcast", ["workspace_id", "created_at"], unique=False
    )
    op.create_table(
        "broadcast_recipient",
        sa.Column("broadcast_id", sa.Uuid(), nullable=False),
        sa.Column("contact_id", sa.Uuid(), nullable=False),
        sa.Column("status", sa.String(length=20), nullable=False),
        sa.Column("reason", sa.String(length=40), nullable=True),
        sa.Column("detail", sa.String(length=300), nullable=True),
        sa.Column("ledger_id", sa.Uuid(), nullable=True),
        _ts("at", False),
        sa.ForeignKeyConstraint(
            ["broadcast_id"],
            ["broadcast.id"],
            name=op.f("fk_broadcast_recipient_broadcast_id_broadcast"),
            ondelete="CASCADE",
        ),
        sa.PrimaryKeyConstraint("broadcast_id", "contact_id", name=op.f("pk_broadcast_recipient")),
    )
    op.create_index(
        "ix_broadcast_recipient_status",
        "broadcast_recipient",
        ["broadcast_id", "status", "reason"],
        unique=False,
    )


def downgrade() -> None:
    op.drop_index("ix_broadcast_recipient_status", table_name="broadcast_recipient")
    op.drop_table("broadcast_recipient")
    op.drop_index("ix_broadcast_workspace_created", table_name="broadcast")
    op.drop_table("broadcast")
