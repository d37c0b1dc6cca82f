"""execution cancel requests and the cross-process live-update relay

Revision ID: 0006
Revises: 0005
Create Date: 2026-11-26 17:50:00
"""

from __future__ import annotations

from collections.abc import Sequence

import sqlalchemy as sa
from alembic import op

import socialflow.core.db

revision: str = "0006"
down_revision: str | None = "0005"
branch_labels: str | Sequence[str] | None = None
depends_on: str | Sequence[str] | None = None


def upgrade() -> None:
    op.add_column(
        "flow_execution",
        sa.Column(
            "cancel_requested_at", socialflow.core.db.UTCDateTime(timezone=True), nullable=True
        ),
    )
    op.create_table(
        "execution_update",
        sa.Column(
            "id",
            sa.BigInteger().with_variant(sa.Integer(), "sqlite"),
            autoincrement=True,
            nullable=False,
        ),
        sa.Column("origin", sa.String(length=64), nullable=False),
        sa.Column("events", socialflow.core.db.JSONType, nullable=False),
        sa.Column("created_at", socialflow.core.db.UTCDateTime(timezone=True), nullable=False),
        sa.PrimaryKeyConstraint("id", name=op.f("pk_execution_update")),
    )
    op.create_index(
        op.f("ix_execution_update_created_at"), "execution_update", ["created_at"], unique=False
    )


def downgrade() -> None:
    op.drop_index(op.f("ix_execution_update_created_at"), table_name="execution_update")
    op.drop_table("execution_update")
    op.drop_column("flow_execution", "cancel_requested_at")
