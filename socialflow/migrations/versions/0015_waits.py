"""runs that wait for a contact's reply: conversation_wait; the workspace's global keywords

Revision ID: 0015
Revises: 0014
Create Date: 2026-12-07 23:30:00

An ``instagram.ask`` node parks its run until the contact answers: ``conversation_wait`` keeps
what it waits for (account, contact, deadline), the outputs of the nodes completed before it
and, once resolved, the reply or timeout and the event that answered it. ``global_keyword``
lists the words a workspace marks global ("stop"): sent alone they end a wait and go to the
flows instead of answering it. ``flow_execution.status`` gains the value ``waiting`` (a
string column: no schema change).
"""

from __future__ import annotations

from collections.abc import Sequence

import sqlalchemy as sa
from alembic import op
from sqlalchemy.dialects import postgresql

import socialflow.core.db

revision: str = "0015"
down_revision: str | None = "0014"
branch_labels: str | Sequence[str] | None = None
depends_on: str | Sequence[str] | None = None

_JSON = sa.JSON().with_variant(postgresql.JSONB(astext_type=sa.Text()), "postgresql")


def upgrade() -> None:
    op.create_table(
        "conversation_wait",
        sa.Column("id", sa.Uuid(), nullable=False),
        sa.Column("execution_id", sa.Uuid(), nullable=False),
        sa.Column("workspace_id", sa.Uuid(), nullable=False),
        sa.Column("flow_id", sa.Uuid(), nullable=True),
        sa.Column("node_id", sa.String(length=64), nullable=False),
        sa.Column("account_id", sa.String(length=100), nullable=False),
        sa.Column("contact_id", sa.String(length=100), nullable=False),
        sa.Column("status", sa.String(length=20), nullable=False),
        sa.Column("expects", sa.String(length=40), nullable=False),
        sa.Column("question", sa.Text(), nullable=False),
        sa.Column("state", _JSON, nullable=False),
        sa.Column("outputs", _JSON, nullable=False),
        sa.Column("reply", _JSON, nullable=True),
        sa.Column("event_id", sa.Uuid(), nullable=True),
        sa.Column("expires_at", socialflow.core.db.UTCDateTime(timezone=True), nullable=False),
        sa.Column(
            "window_expires_at", socialflow.core.db.UTCDateTime(timezone=True), nullable=True
        ),
        sa.Column("created_at", socialflow.core.db.UTCDateTime(timezone=True), nullable=False),
        sa.Column("resolved_at", socialflow.core.db.UTCDateTime(timezone=True), nullable=True),
        sa.ForeignKeyConstraint(
            ["execution_id"],
            ["flow_execution.id"],
            name=op.f("fk_conversation_wait_execution_id_flow_execution"),
            ondelete="CASCADE",
        ),
        sa.PrimaryKeyConstraint("id", name=op.f("pk_conversation_wait")),
    )
    op.create_index(
        "ix_conversation_wait_contact",
        "conversation_wait",
        ["account_id", "contact_id", "status"],
    )
    op.create_index(
        "ix_conversation_wait_status_expires", "conversation_wait", ["status", "expires_at"]
    )
    op.create_index(
        op.f("ix_conversation_wait_execution_id"), "conversation_wait", ["execution_id"]
    )
    op.create_index(
        op.f("ix_conversation_wait_workspace_id"), "conversation_wait", ["workspace_id"]
    )
    op.create_index(op.f("ix_conversation_wait_event_id"), "conversation_wait", ["event_id"])
    op.create_table(
        "global_keyword",
        sa.Column("id", sa.Uuid(), nullable=False),
        sa.Column("workspace_id", sa.Uuid(), nullable=False),
        sa.Column("keyword", sa.String(length=100), nullable=False),
        sa.Column("created_at", socialflow.core.db.UTCDateTime(timezone=True), nullable=False),
        sa.PrimaryKeyConstraint("id", name=op.f("pk_global_keyword")),
        sa.UniqueConstraint("workspace_id", "keyword", name=op.f("uq_global_keyword_workspace_id")),
    )
    op.create_index(op.f("ix_global_keyword_workspace_id"), "global_keyword", ["workspace_id"])


def downgrade() -> None:
    op.drop_index(op.f("ix_global_keyword_workspace_id"), table_name="global_keyword")
    op.drop_table("global_keyword")
    op.drop_index(op.f("ix_conversation_wait_event_id"), table_name="conversation_wait")
    op.drop_index(op.f("ix_conversation_wait_workspace_id"), table_name="conversation_wait")
    op.drop_index(op.f("ix_conversation_wait_execution_id"), table_name="conversation_wait")
    op.drop_index("ix_conversation_wait_status_expires", table_name="conversation_wait")
    op.drop_index("ix_conversation_wait_contact", table_name="conversation_wait")
    op.drop_table("conversation_wait")
