"""publishing: post media and the posts of the content calendar

Revision ID: 0016
Revises: 0015
Create Date: 2026-12-07 23:30:00

``post_media`` keeps uploaded images and videos (generated storage names, what Pillow or
PyAV read, the problems Meta would have). ``post`` is a calendar post and the record of its
publishing: the container ids, when ``media_publish`` was called, the media id and link, and
a lease (``attempts``, ``claimed_at``) so a dead attempt is resumed, never repeated.
"""

from __future__ import annotations

from collections.abc import Sequence

import fastapi_users_db_sqlalchemy.generics
import sqlalchemy as sa
from alembic import op
from sqlalchemy.dialects import postgresql

import socialflow.core.db

revision: str = "0016"
down_revision: str | None = "0015"
branch_labels: str | Sequence[str] | None = None
depends_on: str | Sequence[str] | None = None

_JSON = sa.JSON().with_variant(postgresql.JSONB(astext_type=sa.Text()), "postgresql")


def _ts(name: str, nullable: bool) -> sa.Column[object]:
    return sa.Column(name, socialflow.core.db.UTCDateTime(timezone=True), nullable=nullable)


def _created_by(table: str) -> sa.ForeignKeyConstraint:
    return sa.ForeignKeyConstraint(
        ["created_by"], ["user.id"], name=op.f(f"fk_{table}_created_by_user"), ondelete="SET NULL"
    )


def _workspace(table: str) -> sa.ForeignKeyConstraint:
    return sa.ForeignKeyConstraint(
        ["workspace_id"],
        ["workspace.id"],
        name=op.f(f"fk_{table}_workspace_id_workspace"),
        ondelete="CASCADE",
    )


def upgrade() -> None:
    op.create_table(
        "post_media",
        sa.Column("id", sa.Uuid(), nullable=False),
        sa.Column("workspace_id", sa.Uuid(), nullable=False),
        sa.Column("kind", sa.String(length=10), nullable=False),
        sa.Column("filename", sa.String(length=255), nullable=False),
        sa.Column("stored_name", sa.String(length=120), nullable=False),
        sa.Column("storage_url", sa.Text(), nullable=False),
        sa.Column("content_type", sa.String(length=100), nullable=False),
        sa.Column("size", sa.BigInteger(), nullable=False),
        sa.Column("sha256", sa.String(length=64), nullable=False),
        sa.Column("width", sa.Integer(), nullable=True),
        sa.Column("height", sa.Integer(), nullable=True),
        sa.Column("duration_seconds", sa.Float(), nullable=True),
        sa.Column("details", _JSON, nullable=False),
        sa.Column("problems", _JSON, nullable=False),
        sa.Column("created_by", fastapi_users_db_sqlalchemy.generics.GUID(), nullable=True),
        _ts("created_at", False),
        _workspace("post_media"),
        _created_by("post_media"),
        sa.PrimaryKeyConstraint("id", name=op.f("pk_post_media")),
        sa.UniqueConstraint("stored_name", name=op.f("uq_post_media_stored_name")),
    )
    with op.batch_alter_table("post_media", schema=None) as batch_op:
        batch_op.create_index(
            batch_op.f("ix_post_media_workspace_id"), ["workspace_id"], unique=False
        )

    op.create_table(
        "post",
        sa.Column("id", sa.Uuid(), nullable=False),
        sa.Column("workspace_id", sa.Uuid(), nullable=False),
        sa.Column("account_id", sa.Uuid(), nullable=False),
        sa.Column("type", sa.String(length=20), nullable=False),
        sa.Column("caption", sa.Text(), nullable=False),
        sa.Column("alt_text", sa.Text(), nullable=False),
        sa.Column("collaborators", _JSON, nullable=False),
        sa.Column("media_ids", _JSON, nullable=False),
        sa.Column("cover_media_id", sa.Uuid(), nullable=True),
        _ts("scheduled_at", True),
        sa.Column("status", sa.String(length=20), nullable=False),
        sa.Column("problems", _JSON, nullable=False),
        sa.Column("waiting_reason", sa.Text(), nullable=True),
        _ts("next_attempt_at", True),
        sa.Column("error_code", sa.String(length=60), nullable=True),
        sa.Column("error", sa.Text(), nullable=True),
        sa.Column("containers", _JSON, nullable=False),
        _ts("containers_created_at", True),
        _ts("publish_started_at", True),
        sa.Column("ig_media_id", sa.String(length=64), nullable=True),
        sa.Column("permalink", sa.Text(), nullable=True),
        _ts("published_at", True),
        sa.Column("attempts", sa.Integer(), nullable=False),
        _ts("claimed_at", True),
        sa.Column("prefect_flow_run_id", sa.Uuid(), nullable=True),
        sa.Column("idempotency_key", sa.String(length=64), nullable=True),
        sa.Column("created_by", fastapi_users_db_sqlalchemy.generics.GUID(), nullable=True),
        _ts("created_at", False),
        _ts("updated_at", False),
        _workspace("post"),
        sa.ForeignKeyConstraint(
            ["account_id"],
            ["instagram_account.id"],
            name=op.f("fk_post_account_id_instagram_account"),
            ondelete="CASCADE",
        ),
        _created_by("post"),
        sa.PrimaryKeyConstraint("id", name=op.f("pk_post")),
        sa.UniqueConstraint("idempotency_key", name=op.f("uq_post_idempotency_key")),
    )
    with op.batch_alter_table("post", schema=None) as batch_op:
        batch_op.create_index(batch_op.f("ix_post_workspace_id"), ["workspace_id"], unique=False)
        batch_op.create_index(batch_op.f("ix_post_account_id"), ["account_id"], unique=False)
        batch_op.create_index(
            "ix_post_workspace_scheduled", ["workspace_id", "scheduled_at"], unique=False
        )
        batch_op.create_index("ix_post_status_scheduled", ["status", "scheduled_at"], unique=False)


def downgrade() -> None:
    op.drop_table("post")
    op.drop_table("post_media")
