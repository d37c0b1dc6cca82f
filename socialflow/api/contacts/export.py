"""CSV export of a workspace's contacts, streamed a page at a time and safe to open in a
spreadsheet: a cell that starts with ``= + - @`` (or a tab or carriage return) is prefixed with
``'`` so no spreadsheet runs it as a formula (OWASP's CSV injection advice)."""

from __future__ import annotations

import csv
import io
import uuid
from collections.abc import AsyncIterator
from typing import Any

from sqlalchemy import select

from socialflow.api.contacts.schemas import ContactFilter
from socialflow.api.contacts.service import conditions, list_fields, reads
from socialflow.contacts import Contact
from socialflow.core.db import Database

__all__ = ["COLUMNS", "export_csv", "safe_cell"]

COLUMNS = (
    "id",
    "account_id",
    "igsid",
    "username",
    "name",
    "source",
    "first_seen_at",
    "last_seen_at",
    "last_inbound_at",
    "window_open",
    "opted_out",
    "tags",
)
_PAGE = 500
_FORMULA = ("=", "+", "-", "@", "\t", "\r")


def safe_cell(value: Any) -> str:
    """``value`` as a CSV cell no spreadsheet evaluates."""
    if value is None:
        return ""
    if isinstance(value, bool):
        text = "true" if value else "false"
    elif isinstance(value, list):
        text = "; ".join(str(v) for v in value)
    elif hasattr(value, "isoformat"):
        text = value.isoformat()
    else:
        text = str(value)
    return f"'{text}" if text.startswith(_FORMULA) else text


def _line(cells: list[str]) -> str:
    out = io.StringIO()
    csv.writer(out, lineterminator="\r\n").writerow(cells)
    return out.getvalue()


async def export_csv(
    db: Database, workspace_id: uuid.UUID, query: ContactFilter
) -> AsyncIterator[str]:
    """The contacts ``query`` matches as CSV lines: a header, then one line per contact, read
    by id a page at a time in a session of its own (the request's is gone while this streams)."""
    async with db.sessionmaker() as session:
        keys = [f.key for f in await list_fields(workspace_id, session=session)]
    yield _line([*COLUMNS, *(f"field:{k}" for k in keys)])
    after: uuid.UUID | None = None
    where = conditions(workspace_id, query)
    while True:
        async with db.sessionmaker() as session:
            page = select(Contact).where(*where).order_by(Contact.id).limit(_PAGE)
            if after is not None:
                page = page.where(Contact.id > after)
            rows = list((await session.scalars(page)).all())
            items = await reads(session, rows)
        if not rows:
            return
        after = rows[-1].id
        for item in items:
            cells = [
                item.id,
                item.account_id,
                item.igsid,
                item.username,
                item.name,
                item.source,
                item.first_seen_at,
                item.last_seen_at,
                item.last_inbound_at,
                item.window.open,
                item.opted_out,
                item.tags,
                *(item.fields.get(k) for k in keys),
            ]
            yield _line([safe_cell(c) for c in cells])
