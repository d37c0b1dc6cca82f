"""the send ledger marks the entries of test runs

Revision ID: 0011
Revises: 0010
Create Date: 2026-12-07 20:00:00

``outbox_message.sandbox`` says an entry was recorded and not sent, which an account in
sandbox mode does for every run; ``test_run`` says the entry comes from a test run (the
editor's, always sandboxed), as its execution's ``sandbox`` flag does. Existing entries take
their execution's flag.
"""

from __future__ import annotations

from collections.abc import Sequence

import sqlalchemy as sa
from alembic import op

revision: str = "0011"
down_revision: str | None = "0010"
branch_labels: str | Sequence[str] | None = None
depends_on: str | Sequence[str] | None = None


def upgrade() -> None:
    with op.batch_alter_table("outbox_message", schema=None) as batch_op:
        batch_op.add_column(
            sa.Column("test_run", sa.Boolean(), nullable=False, server_default=sa.false())
        )
    outbox = sa.table(
        "outbox_message", sa.column("execution_id", sa.Uuid()), sa.column("test_run", sa.Boolean())
    )
    executions = sa.table(
        "flow_execution", sa.column("id", sa.Uuid()), sa.column("sandbox", sa.Boolean())
    )
    tested = sa.select(executions.c.id).where(executions.c.sandbox.is_(True))
    op.execute(outbox.update().where(outbox.c.execution_id.in_(tested)).values(test_run=True))


def downgrade() -> None:
    with op.batch_alter_table("outbox_message", schema=None) as batch_op:
        batch_op.drop_column("test_run")
