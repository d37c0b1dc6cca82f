"""why an event ran nothing: event_outcome; deleted flows told apart from paused ones

Revision ID: 0011
Revises: 0010
Create Date: 2026-12-07 20:00:00

The dispatcher records, per event and per flow it offered the event to and did not run, the
reason the deciding code gave (a trigger filter not matched, the flow paused, an echo of the
account's own message, ...). ``flow_trigger.removed`` marks deleted flows, which are no longer
offered anything, while paused ones are offered events and say so.
"""

from __future__ import annotations

from collections.abc import Sequence

import sqlalchemy as sa
from alembic import op

import socialflow.core.db

revision: str = "0011"
down_revision: str | None = "0010"
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
        sa.PrimaryKeyConstraint("event_id", "flow_id"),
    )
    op.create_index("ix_event_outcome_workspace_id", "event_outcome", ["workspace_id"])
    op.create_index("ix_webhook_event_received_at", "webhook_event", ["received_at"])
    with op.batch_alter_table("flow_trigger") as batch:
        batch.add_column(
            sa.Column("removed", sa.Boolean(), nullable=False, server_default=sa.false())
        )


def downgrade() -> None:
    with op.batch_alter_table("flow_trigger") as batch:
        batch.drop_column("removed")
    op.drop_index("ix_webhook_event_received_at", table_name="webhook_event")
    op.drop_index("ix_event_outcome_workspace_id", table_name="event_outcome")
    op.drop_table("event_outcome")
