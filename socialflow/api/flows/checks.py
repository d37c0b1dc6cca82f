"""Checks a flow graph against the node registry and the workspace's credentials.

``validate_graph`` knows node kinds but not the database; this adds what only the workspace
can answer (does the credential a node names exist, and is it of a kind the node accepts), so
saving, publishing and importing report every problem in one answer.
"""

from __future__ import annotations

import uuid
from dataclasses import dataclass

from sqlalchemy import select
from sqlalchemy.ext.asyncio import AsyncSession

from socialflow.api.flows.field_checks import field_problems
from socialflow.core.credentials import Credential
from socialflow.core.errors import NotFoundError, ValidationError
from socialflow.nodes import NodeRegistry
from socialflow.orchestration import GraphProblem, GraphSpec, validate_graph

__all__ = [
    "CREDENTIAL_FIELD",
    "CredentialReference",
    "credential_references",
    "graph_problems",
    "refusal",
]

#: The node config field that names a workspace credential.
CREDENTIAL_FIELD = "credential"


@dataclass(frozen=True)
class CredentialReference:
    """A node naming a workspace credential in its config."""

    node_id: str
    kind: str
    version: int
    name: str


def credential_references(graph: GraphSpec) -> list[CredentialReference]:
    """Every credential name the graph's nodes refer to, in node order."""
    references = []
    for node in graph.nodes:
        name = node.config.get(CREDENTIAL_FIELD)
        if isinstance(name, str) and name:
            references.append(CredentialReference(node.id, node.kind, node.version, name))
    return references


async def graph_problems(
    graph: GraphSpec,
    workspace_id: uuid.UUID,
    *,
    registry: NodeRegistry,
    session: AsyncSession,
) -> list[GraphProblem]:
    """Every problem of ``graph`` in ``workspace_id``: the registry's, the contact fields' its
    answers are saved to, then the credentials'.

    Args:
        graph: The graph to check.
        workspace_id: The workspace whose credentials the graph may name.
        registry: Node kinds.
        session: The database session.

    Returns:
        The problems, empty when the graph can be published.
    """
    problems = validate_graph(graph, registry)
    problems += await field_problems(graph, workspace_id, session=session)
    references = credential_references(graph)
    if not references:
        return problems
    rows = await session.execute(
        select(Credential.name, Credential.kind).where(
            Credential.workspace_id == workspace_id,
            Credential.name.in_(sorted({r.name for r in references})),
        )
    )
    kinds = dict(rows.tuples().all())
    field = f"config.{CREDENTIAL_FIELD}"
    for ref in references:
        kind = kinds.get(ref.name)
        if kind is None:
            problems.append(
                GraphProblem(
                    code="credential_not_found",
                    message=(
                        f"node {ref.node_id!r}: no credential named {ref.name!r} in this "
                        "workspace; create it or choose another"
                    ),
                    node_id=ref.node_id,
                    field=field,
                )
            )
            continue
        accepted = _accepted_kinds(ref, registry)
        if accepted and kind not in accepted:
            problems.append(
                GraphProblem(
                    code="credential_kind_mismatch",
                    message=(
                        f"node {ref.node_id!r}: credential {ref.name!r} is of kind {kind!r}; "
                        f"this node takes {', '.join(accepted)}"
                    ),
                    node_id=ref.node_id,
                    field=field,
                )
            )
    return problems


def _accepted_kinds(ref: CredentialReference, registry: NodeRegistry) -> tuple[str, ...]:
    try:
        return registry.get(ref.kind, ref.version).credentials
    except NotFoundError:
        return ()  # an unknown kind or version is already a problem of its own


def refusal(problems: list[GraphProblem], what: str = "the graph") -> ValidationError:
    """The 422 error listing every problem, its message summarising the first few.

    Args:
        problems: At least one problem.
        what: What was checked, for the message ("the draft", "the imported graph").
    """
    count = len(problems)
    shown = "; ".join(p.message for p in problems[:5])
    more = f" (and {count - 5} more)" if count > 5 else ""
    msg = f"{what} has {count} problem{'s' if count != 1 else ''}: {shown}{more}"
    return ValidationError(msg, problems=[p.model_dump() for p in problems])
