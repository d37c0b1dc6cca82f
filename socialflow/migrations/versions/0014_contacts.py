"""contacts: the people each connected account meets, their tags, typed fields and events

Revision ID: 0014
Revises: 0013
Create Date: 2026-12-07 23:30:00

A contact is one person as one connected Instagram account of a workspace sees them (its id is
derived from that key), written by the dispatcher from every event that names a person.
Workspaces define tags and typed custom fields; ``contact_event`` links contacts to the inbox
events they appeared in (their timeline, and what erasing a contact touches).
"""

from __future__ import annotations

from collections.abc import Sequence

import sqlalchemy as sa
from alembic import op
from sqlalchemy.dialects import postgresql

import socialflow.core.db

revision: str = "0014"
down_revision: str | None = "0013"
branch_labels: str | Sequence[str] | None = None
depends_on: str | Sequence[str] | None = None

_JSON = sa.JSON().with_variant(postgresql.JSONB(astext_type=sa.Text()), "postgresql")


def _when(name: str, *, nullable: bool = False) -> sa.Column[object]:
    return sa.Column(name, socialflow.core.db.UTCDateTime(timezone=True), nullable=nullable)


def upgrade() -> None:
    op.create_table(
        "contact",
        sa.Column("id", sa.Uuid(), nullable=False),
        sa.Column("workspace_id", sa.Uuid(), nullable=False),
        sa.Column("account_id", sa.String(length=64), nullable=False),
        sa.Column("igsid", sa.String(length=64), nullable=False),
        sa.Column("username", sa.String(length=100), nullable=True),
        sa.Column("name", sa.String(length=200), nullable=True),
        sa.Column("profile_pic", sa.Text(), nullable=True),
        _when("profile_fetched_at", nullable=True),
        sa.Column("profile_error", sa.String(length=300), nullable=True),
        sa.Column("source", sa.String(length=30), nullable=False),
        _when("first_seen_at"),
        _when("last_seen_at"),
        _when("last_inbound_at", nullable=True),
        sa.Column("opted_out", sa.Boolean(), nullable=False),
        _when("opted_out_at", nullable=True),
        _when("created_at"),
        _when("updated_at"),
        sa.PrimaryKeyConstraint("id", name=op.f("pk_contact")),
        sa.UniqueConstraint(
            "workspace_id", "account_id", "igsid", name=op.f("uq_contact_workspace_id")
        ),
    )
    op.create_index("ix_contact_workspace_id", "contact", ["workspace_id"])
    op.create_index("ix_contact_workspace_last_seen", "contact", ["workspace_id", "last_seen_at"])
    op.create_table(
        "contact_tag",
        sa.Column("id", sa.Uuid(), nullable=False),
        sa.Column("workspace_id", sa.Uuid(), nullable=False),
        sa.Column("name", sa.String(length=60), nullable=False),
        _when("created_at"),
        sa.PrimaryKeyConstraint("id", name=op.f("pk_contact_tag")),
        sa.UniqueConstraint("workspace_id", "name", name=op.f("uq_contact_tag_workspace_id")),
    )
    op.create_index("ix_contact_tag_workspace_id", "contact_tag", ["workspace_id"])
    op.create_table(
        "contact_field",
        sa.Column("id", sa.Uuid(), nullable=False),
        sa.Column("workspace_id", sa.Uuid(), nullable=False),
        sa.Column("key", sa.String(length=40), nullable=False),
        sa.Column("label", sa.String(length=100), nullable=False),
        sa.Column("type", sa.String(length=20), nullable=False),
        sa.Column("choices", _JSON, nullable=False),
        _when("created_at"),
        sa.PrimaryKeyConstraint("id", name=op.f("pk_contact_field")),
        sa.UniqueConstraint("workspace_id", "key", name=op.f("uq_contact_field_workspace_id")),
    )
    op.create_index("ix_contact_field_workspace_id", "contact_field", ["workspace_id"])
    op.create_table(
        "contact_tag_link",
        sa.Column("contact_id", sa.Uuid(), nullable=False),
        sa.Column("tag_id", sa.Uuid(), nullable=False),
        _when("created_at"),
        sa.ForeignKeyConstraint(
            ["contact_id"],
            ["contact.id"],
            name=op.f("fk_contact_tag_link_contact_id_contact"),
            ondelete="CASCADE",
        ),
        sa.ForeignKeyConstraint(
            ["tag_id"],
            ["contact_tag.id"],
            name=op.f("fk_contact_tag_link_tag_id_contact_tag"),
            ondelete="CASCADE",
        ),
        sa.PrimaryKeyConstraint("contact_id", "tag_id", name=op.f("pk_contact_tag_link")),
    )
    op.create_index("ix_contact_tag_link_tag_id", "contact_tag_link", ["tag_id"])
    op.create_table(
        "contact_field_value",
        sa.Column("contact_id", sa.Uuid(), nullable=False),
        sa.Column("field_id", sa.Uuid(), nullable=False),
        sa.Column("value", _JSON, nullable=False),
        sa.Column("value_text", sa.Text(), nullable=False),
        _when("updated_at"),
        sa.ForeignKeyConstraint(
            ["contact_id"],
            ["contact.id"],
            name=op.f("fk_contact_field_value_contact_id_contact"),
            ondelete="CASCADE",
        ),
        sa.ForeignKeyConstraint(
            ["field_id"],
            ["contact_field.id"],
            name=op.f("fk_contact_field_value_field_id_contact_field"),
            ondelete="CASCADE",
        ),
        sa.PrimaryKeyConstraint("contact_id", "field_id", name=op.f("pk_contact_field_value")),
    )
    op.create_index("ix_contact_field_value_field_id", "contact_field_value", ["field_id"])
    op.create_table(
        "contact_event",
        sa.Column("contact_id", sa.Uuid(), nullable=False),
        sa.Column("event_id", sa.Uuid(), nullable=False),
        _when("occurred_at"),
        sa.ForeignKeyConstraint(
            ["contact_id"],
            ["contact.id"],
            name=op.f("fk_contact_event_contact_id_contact"),
            ondelete="CASCADE",
        ),
        sa.PrimaryKeyConstraint("contact_id", "event_id", name=op.f("pk_contact_event")),
    )
    op.create_index("ix_contact_event_event_id", "contact_event", ["event_id"])


def downgrade() -> None:
    op.drop_table("contact_event")
    op.drop_table("contact_field_value")
    op.drop_table("contact_tag_link")
    op.drop_table("contact_field")
    op.drop_table("contact_tag")
    op.drop_table("contact")
