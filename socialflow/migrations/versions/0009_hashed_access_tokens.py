"""access tokens stored as SHA-256 digests

Session and bearer tokens were kept in clear in ``access_token.token``: anyone reading the
table (a backup, a read replica, a leaked dump) could sign in as every user with a session.
The column now holds ``sha256(token)`` in hex (64 characters).

Existing sessions are hashed in place rather than ended: the digest of a token is computed
from the stored token alone, so every browser stays signed in through the upgrade. Bearer
tokens issued before this revision were JWTs, never stored; they no longer authenticate and
scripts sign in again with ``POST /api/auth/token``. A downgrade cannot recover tokens from
digests, so it ends every session instead.

Revision ID: 0009
Revises: 0008
Create Date: 2026-12-02 00:00:00
"""

from __future__ import annotations

import hashlib
from collections.abc import Sequence

import sqlalchemy as sa
from alembic import op

revision: str = "0009"
down_revision: str | None = "0008"
branch_labels: str | Sequence[str] | None = None
depends_on: str | Sequence[str] | None = None

_TABLE = sa.table("access_token", sa.column("token", sa.String()))


def _digest(token: str) -> str:
    # the same digest as socialflow.api.auth.sessions.token_digest, frozen here: a migration
    # must not change when application code does
    return hashlib.sha256(token.encode("utf-8", "surrogatepass")).hexdigest()


def upgrade() -> None:
    with op.batch_alter_table("access_token", schema=None) as batch_op:
        batch_op.alter_column(
            "token",
            existing_type=sa.String(length=43),
            type_=sa.String(length=64),
            existing_nullable=False,
        )
    connection = op.get_bind()
    stored = [row[0] for row in connection.execute(sa.select(_TABLE.c.token))]
    for token in stored:
        # runs once: processes starting together queue on the migration lock, and the revision
        # is recorded in the same transaction
        connection.execute(
            _TABLE.update().where(_TABLE.c.token == token).values(token=_digest(token))
        )


def downgrade() -> None:
    op.execute(_TABLE.delete())
    with op.batch_alter_table("access_token", schema=None) as batch_op:
        batch_op.alter_column(
            "token",
            existing_type=sa.String(length=64),
            type_=sa.String(length=43),
            existing_nullable=False,
        )
