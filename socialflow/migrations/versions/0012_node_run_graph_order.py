"""node runs record their place in graph order

Revision ID: 0012
Revises: 0011
Create Date: 2026-12-07 20:10:00

Run details list their nodes in graph order (topological, ties by position on the canvas)
rather than in the order they started, which put parallel branches in a different order on
every run. Existing node runs get 0 and keep listing in the order they started.
"""

from __future__ import annotations

from collections.abc import Sequence

import sqlalchemy as sa
from alembic import op

revision: str = "0012"
down_revision: str | None = "0011"
branch_labels: str | Sequence[str] | None = None
depends_on: str | Sequence[str] | None = None


def upgrade() -> None:
    with op.batch_alter_table("node_run", schema=None) as batch_op:
        batch_op.add_column(sa.Column("seq", sa.Integer(), nullable=False, server_default="0"))


def downgrade() -> None:
    with op.batch_alter_table("node_run", schema=None) as batch_op:
        batch_op.drop_column("seq")
