"""why an event ran nothing: event_outcome; deleted flows told apart from paused ones; replays

Revision ID: 0013
Revises: 0012
Create Date: 2026-12-07 20:00:00

The dispatcher records, per event and per flow it offered the event to and did not run, the
reason the deciding code gave (a trigger filter not matched, the flow paused, an echo of the
account's own message, ...). ``flow_trigger.removed`` marks deleted flows, which are no longer
offered anything, while paused ones are offered events and say so. ``flow_replay`` keeps which
sandbox runs a replay of past events through a draft queued. A knowledge base may set its own
weight of dense search in hybrid search (``knowledge_base.hybrid_dense_weight``).
"""

from __future__ import annotations

from collections.abc import Sequence

import fastapi_users_db_sqlalchemy.generics
import sqlalchemy as sa
from alembic import op
from sqlalchemy.dialects import postgresql

import socialflow.core.db

revision: str = "0013"
down_revision: str | None = "0012"
branch_labels: str | Sequence[str] | None = None
depends_on: str | Sequence[str] | None = None


def upgrade() -> None:
    op.create_table(
        "event_outcome",
        sa.Column("event_id", sa.Uuid(), nullable=False),
        sa.Column("flow_id", sa.Uuid(), nullable=False),
        sa.Column("workspace_id", sa.Uuid(), nullable=False),
        sa.Column("flow_name", sa.String(length=200), nullable=False),
        sa.Column("version_number", sa.Integer(), nullable=False),
        sa.Column("code", sa.String(length=40), nullable=False),
        sa.Column("message", sa.Text(), nullable=False),
        sa.Column("field", sa.String(length=100), nullable=True),
        sa.Column("created_at", socialflow.core.db.UTCDateTime(timezone=True), nullable=False),
        sa.PrimaryKeyConstraint("event_id", "flow_id", name=op.f("pk_event_outcome")),
    )
    op.create_index("ix_event_outcome_workspace_id", "event_outcome", ["workspace_id"])
    op.create_index("ix_webhook_event_received_at", "webhook_event", ["received_at"])
    op.create_table(
        "flow_replay",
        sa.Column("id", sa.Uuid(), nullable=False),
        sa.Column("workspace_id", sa.Uuid(), nullable=False),
        sa.Column("flow_id", sa.Uuid(), nullable=False),
        sa.Column("draft_version_id", sa.Uuid(), nullable=False),
        sa.Column(
            "items",
            sa.JSON().with_variant(postgresql.JSONB(astext_type=sa.Text()), "postgresql"),
            nullable=False,
        ),
        sa.Column("created_by", fastapi_users_db_sqlalchemy.generics.GUID(), nullable=True),
        sa.Column("created_at", socialflow.core.db.UTCDateTime(timezone=True), nullable=False),
        sa.ForeignKeyConstraint(
            ["workspace_id"],
            ["workspace.id"],
            name=op.f("fk_flow_replay_workspace_id_workspace"),
            ondelete="CASCADE",
        ),
        sa.ForeignKeyConstraint(
            ["flow_id"], ["flow.id"], name=op.f("fk_flow_replay_flow_id_flow"), ondelete="CASCADE"
        ),
        sa.ForeignKeyConstraint(
            ["created_by"],
            ["user.id"],
            name=op.f("fk_flow_replay_created_by_user"),
            ondelete="SET NULL",
        ),
        sa.PrimaryKeyConstraint("id", name=op.f("pk_flow_replay")),
    )
    op.create_index("ix_flow_replay_workspace_id", "flow_replay", ["workspace_id"])
    op.create_index("ix_flow_replay_flow_id", "flow_replay", ["flow_id"])
    with op.batch_alter_table("knowledge_base") as batch:
        batch.add_column(sa.Column("hybrid_dense_weight", sa.Float(), nullable=True))
    with op.batch_alter_table("flow_trigger") as batch:
        batch.add_column(
            sa.Column("removed", sa.Boolean(), nullable=False, server_default=sa.false())
        )


def downgrade() -> None:
    with op.batch_alter_table("knowledge_base") as batch:
        batch.drop_column("hybrid_dense_weight")
    op.drop_index("ix_flow_replay_flow_id", table_name="flow_replay")
    op.drop_index("ix_flow_replay_workspace_id", table_name="flow_replay")
    op.drop_table("flow_replay")
    with op.batch_alter_table("flow_trigger") as batch:
        batch.drop_column("removed")
    op.drop_index("ix_webhook_event_received_at", table_name="webhook_event")
    op.drop_index("ix_event_outcome_workspace_id", table_name="event_outcome")
    op.drop_table("event_outcome")
