"""model usage and cost totals on flow_execution

Revision ID: 0008
Revises: 0007
Create Date: 2026-11-27 00:30:00
"""

from __future__ import annotations

from collections.abc import Sequence
from typing import Any

import sqlalchemy as sa
from alembic import op

revision: str = "0008"
down_revision: str | None = "0007"
branch_labels: str | Sequence[str] | None = None
depends_on: str | Sequence[str] | None = None

# existing runs start at zero: their node outputs still hold each AI node's usage
_COLUMNS: tuple[tuple[str, sa.types.TypeEngine[Any]], ...] = (
    ("llm_calls", sa.Integer()),
    ("input_tokens", sa.Integer()),
    ("output_tokens", sa.Integer()),
    ("total_tokens", sa.Integer()),
    ("cost_usd", sa.Double()),
    ("unpriced_calls", sa.Integer()),
)


def upgrade() -> None:
    with op.batch_alter_table("flow_execution", schema=None) as batch_op:
        for name, type_ in _COLUMNS:
            batch_op.add_column(sa.Column(name, type_, nullable=False, server_default="0"))


def downgrade() -> None:
    with op.batch_alter_table("flow_execution", schema=None) as batch_op:
        for name, _ in reversed(_COLUMNS):
            batch_op.drop_column(name)
