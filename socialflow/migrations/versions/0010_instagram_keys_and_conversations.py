"""instagram dedupe keys name the receiving account; conversation order on events and runs

Revision ID: 0010
Revises: 0008
Create Date: 2026-12-02 10:00:00

Instagram dedupe keys used to be ``ig:[flow:<id>:]<kind>:<natural>``: the same comment or
message addressed to two connected accounts got one key, so the second account's event was
taken for a redelivery and dropped. They are now ``ig:[flow:<id>:]<kind>:<account>:<natural>``
(``socialflow.instagram._parse._dedupe_key``).

Stored keys are rewritten here to the new format, rather than having the inbox also look up
the old key on every event from now on: the inbox keeps one unique key per event, so its
``ON CONFLICT (dedupe_key) DO NOTHING`` stays the only, race-free duplicate check across API
replicas, and no extra query is paid per event forever. The account is taken from the row's
normalised payload (``account_id``, which is what the parser puts in the key). A key that
grows past 300 characters is hashed over the old key, which is what the parser does too, so a
redelivery after the upgrade finds the rewritten row. ``unknown`` events already named their
account and keep their keys.

Runs of one conversation (a DM thread, a comment thread) now start in the order of their
events: ``conversation_key``, ``conversation_at`` and ``conversation_seq`` on
``webhook_event`` and ``flow_execution``. Existing rows have none and are not held back.
"""

from __future__ import annotations

import hashlib
import json
from collections.abc import Iterator, Sequence
from typing import Any

import sqlalchemy as sa
from alembic import op

import socialflow.core.db

revision: str = "0010"
down_revision: str | None = "0009"
branch_labels: str | Sequence[str] | None = None
depends_on: str | Sequence[str] | None = None

# the parser's limits as of this revision (a migration keeps its own copy of the rules)
_MAX_KEY = 300
_MAX_KEY_ACCOUNT = 64
_BATCH = 500

_EVENTS = sa.table(
    "webhook_event",
    sa.column("id", sa.Uuid()),
    sa.column("source", sa.String()),
    sa.column("kind", sa.String()),
    sa.column("dedupe_key", sa.String()),
    sa.column("payload", socialflow.core.db.JSONType),
)


def _digest(value: Any) -> str:
    text = json.dumps(value, sort_keys=True, separators=(",", ":"), default=str)
    return hashlib.sha256(text.encode()).hexdigest()[:40]


def _key_account(account: str) -> str:
    return account if len(account) <= _MAX_KEY_ACCOUNT else f"~{_digest(account)}"


def _split(key: str, kind: str) -> tuple[str, str] | None:
    """``(prefix, natural)`` of a key ``<prefix><kind>:<natural>``; None for another shape."""
    prefix = "ig:"
    if key.startswith("ig:flow:"):
        scope_end = key.find(":", len("ig:flow:"))
        if scope_end < 0:
            return None
        prefix = key[: scope_end + 1]
    head = f"{prefix}{kind}:"
    if not key.startswith(head):
        return None
    return prefix, key[len(head) :]


def _new_key(old: str, kind: str, account: str) -> str | None:
    parts = _split(old, kind)
    if parts is None:
        return None
    prefix, natural = parts
    if natural.startswith(f"{_key_account(account)}:"):
        # already in the new format: a row a downgrade could not give back its old key
        return None
    full = f"{prefix}{kind}:{_key_account(account)}:{natural}"
    if len(full) <= _MAX_KEY:
        # also an old hashed key (``h:<digest>``): the parser hashes the account-less key
        return full
    return f"{prefix}{kind}:{_key_account(account)}:h:{_digest(old)}"


def _old_key(new: str, kind: str, account: str) -> str | None:
    parts = _split(new, kind)
    if parts is None:
        return None
    prefix, rest = parts
    head = f"{_key_account(account)}:"
    if not rest.startswith(head):
        return None
    old = f"{prefix}{kind}:{rest[len(head) :]}"
    return old if len(old) <= _MAX_KEY else f"{prefix}{kind}:h:{_digest(old)}"


def _instagram_rows(connection: sa.Connection) -> Iterator[list[sa.Row[Any]]]:
    """Instagram events other than ``unknown`` ones, in batches by id."""
    last: Any = None
    while True:
        query = (
            sa.select(_EVENTS.c.id, _EVENTS.c.kind, _EVENTS.c.dedupe_key, _EVENTS.c.payload)
            .where(_EVENTS.c.source == "instagram", _EVENTS.c.kind != "instagram.unknown")
            .order_by(_EVENTS.c.id)
            .limit(_BATCH)
        )
        if last is not None:
            query = query.where(_EVENTS.c.id > last)
        rows = list(connection.execute(query))
        if not rows:
            return
        yield rows
        last = rows[-1].id


def _rewrite(*, to_new: bool) -> None:
    connection = op.get_bind()
    taken: set[str] = set()
    for rows in _instagram_rows(connection):
        updates = []
        for row in rows:
            kind = row.kind.removeprefix("instagram.")
            payload = row.payload if isinstance(row.payload, dict) else {}
            account = str(payload.get("account_id") or "")
            rewrite = _new_key if to_new else _old_key
            key = rewrite(row.dedupe_key, kind, account)
            if key is None or key == row.dedupe_key:
                continue
            if not to_new:
                # the old format has one key for what two accounts received: keep the first
                if key in taken:
                    continue
                taken.add(key)
            updates.append({"row_id": row.id, "key": key})
        if updates:
            connection.execute(
                _EVENTS.update()
                .where(_EVENTS.c.id == sa.bindparam("row_id"))
                .values(dedupe_key=sa.bindparam("key")),
                updates,
            )


def _add_conversation_columns(table: str) -> None:
    with op.batch_alter_table(table, schema=None) as batch_op:
        batch_op.add_column(sa.Column("conversation_key", sa.String(length=200), nullable=True))
        batch_op.add_column(
            sa.Column(
                "conversation_at", socialflow.core.db.UTCDateTime(timezone=True), nullable=True
            )
        )
        batch_op.add_column(sa.Column("conversation_seq", sa.Integer(), nullable=True))
        batch_op.create_index(
            batch_op.f(f"ix_{table}_conversation_key_status"),
            ["conversation_key", "status"],
            unique=False,
        )


def upgrade() -> None:
    _rewrite(to_new=True)
    _add_conversation_columns("webhook_event")
    _add_conversation_columns("flow_execution")


def downgrade() -> None:
    for table in ("flow_execution", "webhook_event"):
        with op.batch_alter_table(table, schema=None) as batch_op:
            batch_op.drop_index(batch_op.f(f"ix_{table}_conversation_key_status"))
            batch_op.drop_column("conversation_seq")
            batch_op.drop_column("conversation_at")
            batch_op.drop_column("conversation_key")
    # best effort: of two events for two accounts under one old key the first gets it (the
    # other keeps its new key), and a key hashed only because of its account stays hashed
    _rewrite(to_new=False)
