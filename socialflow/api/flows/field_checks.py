"""Checks the contact fields a flow saves answers to against the workspace's fields.

``instagram.ask`` can save a valid answer into a contact field (``save_to_field``): the field
must exist in the workspace, and its type must take what the node expects (an ``email`` answer
fits an email or a text field, not a number), so a mistake shows on the canvas when the flow is
saved rather than on the first answer of a published flow.
"""

from __future__ import annotations

import uuid

from sqlalchemy import select
from sqlalchemy.ext.asyncio import AsyncSession

from socialflow.contacts import ContactField
from socialflow.nodes.builtins.conversation import SAVE_TO_FIELD
from socialflow.orchestration import GraphProblem, GraphSpec

__all__ = ["ACCEPTS", "field_problems"]

#: field type → the answers (``expects``) it can store
ACCEPTS: dict[str, frozenset[str]] = {
    "text": frozenset({"text", "email", "phone", "url", "date", "choice"}),
    "number": frozenset({"number"}),
    "date": frozenset({"date"}),
    "boolean": frozenset({"choice"}),
    "email": frozenset({"email"}),
    "phone": frozenset({"phone"}),
    "url": frozenset({"url"}),
    "choice": frozenset({"choice"}),
}


async def field_problems(
    graph: GraphSpec, workspace_id: uuid.UUID, *, session: AsyncSession
) -> list[GraphProblem]:
    """A problem for each node saving to a field the workspace lacks or whose type differs.

    Args:
        graph: The graph to check.
        workspace_id: The workspace whose contact fields the graph names.
        session: The database session.
    """
    saving = [
        (node.id, key, str(node.config.get("expects") or "text"))
        for node in graph.nodes
        if node.kind == "instagram.ask"
        and isinstance(key := node.config.get(SAVE_TO_FIELD), str)
        and key
    ]
    if not saving:
        return []
    rows = await session.execute(
        select(ContactField.key, ContactField.type).where(
            ContactField.workspace_id == workspace_id,
            ContactField.key.in_(sorted({key[:40] for _, key, _ in saving})),
        )
    )
    types = dict(rows.tuples().all())
    field = f"config.{SAVE_TO_FIELD}"
    problems = []
    for node_id, key, expects in saving:
        kind = types.get(key)
        if kind is None:
            message = (
                f"node {node_id!r} field {SAVE_TO_FIELD!r}: no contact field {key[:40]!r} in "
                "this workspace; create it on the Contacts page (Fields) or choose another"
            )
            problems.append(
                GraphProblem(
                    code="contact_field_unknown", message=message, node_id=node_id, field=field
                )
            )
        elif expects not in ACCEPTS.get(kind, frozenset()):
            fits = ", ".join(sorted(t for t, takes in ACCEPTS.items() if expects in takes))
            message = (
                f"node {node_id!r} field {SAVE_TO_FIELD!r}: contact field {key!r} is of type "
                f"{kind!r} and cannot store an answer of type {expects!r}; an answer of type "
                f"{expects!r} fits a field of type {fits}"
            )
            problems.append(
                GraphProblem(
                    code="contact_field_type_mismatch",
                    message=message,
                    node_id=node_id,
                    field=field,
                )
            )
    return problems
