"""Human takeover of a contact: flows skip them while a person of the workspace answers

Revision ID: 0019
Revises: 0018
Create Date: 2026-12-08 00:50:00

``contact.takeover_at`` is when a person took the conversation over, ``takeover_until`` when
automation comes back by itself (NULL: when released).
"""

from __future__ import annotations

from collections.abc import Sequence

import sqlalchemy as sa
from alembic import op

import socialflow.core.db

revision: str = "0019"
down_revision: str | None = "0018"
branch_labels: str | Sequence[str] | None = None
depends_on: str | Sequence[str] | None = None


def _when(name: str) -> sa.Column[object]:
    return sa.Column(name, socialflow.core.db.UTCDateTime(timezone=True), nullable=True)


def upgrade() -> None:
    with op.batch_alter_table("contact") as batch:
        batch.add_column(
            sa.Column("takeover_at", socialflow.core.db.UTCDateTime(timezone=True), nullable=True)
        )
        batch.add_column(
            sa.Column(
                "takeover_until", socialflow.core.db.UTCDateTime(timezone=True), nullable=True
            )
        )


def downgrade() -> None:
    with op.batch_alter_table("contact") as batch:
        batch.drop_column("takeover_until")
        batch.drop_column("takeover_at")
