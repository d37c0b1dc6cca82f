"""What the flow endpoints read and write: flows, their versions, and the export format."""

from __future__ import annotations

import uuid
from datetime import datetime
from typing import Literal

from pydantic import BaseModel, ConfigDict, Field

from socialflow.api.flows.models import FlowStatus
from socialflow.orchestration import GraphProblem, GraphSpec

__all__ = [
    "EXPORT_FORMAT",
    "EXPORT_VERSION",
    "FlowCreate",
    "FlowExport",
    "FlowPage",
    "FlowPublish",
    "FlowRead",
    "FlowSummary",
    "FlowUpdate",
    "FlowVersionPage",
    "FlowVersionRead",
    "FlowVersionSummary",
]

EXPORT_FORMAT = "socialflow.flow"
EXPORT_VERSION = 1
NAME_MAX = 200
DESCRIPTION_MAX = 5000


class FlowCreate(BaseModel):
    """A new flow. Without a graph it starts as a blank canvas."""

    model_config = ConfigDict(extra="forbid")

    name: str = Field(min_length=1, max_length=NAME_MAX, description="Flow name.")
    description: str = Field(default="", max_length=DESCRIPTION_MAX, description="What it does.")
    graph: GraphSpec | None = Field(default=None, description="Draft graph; empty when omitted.")


class FlowUpdate(BaseModel):
    """Changes to a flow's draft; fields left out (or null) stay as they are."""

    model_config = ConfigDict(extra="forbid")

    name: str | None = Field(default=None, min_length=1, max_length=NAME_MAX)
    description: str | None = Field(default=None, max_length=DESCRIPTION_MAX)
    graph: GraphSpec | None = Field(default=None, description="The whole new draft graph.")


class FlowSummary(BaseModel):
    """A flow as listed: everything but its graph."""

    id: uuid.UUID
    workspace_id: uuid.UUID
    name: str
    description: str
    status: FlowStatus
    active_version: int | None = Field(description="Number of the version that runs, if any.")
    created_at: datetime
    updated_at: datetime


class FlowRead(FlowSummary):
    """A flow with its draft graph and what stands between the draft and publishing."""

    graph: GraphSpec = Field(description="The draft graph being edited.")
    problems: list[GraphProblem] = Field(
        description="Every problem of the draft; publishing needs none."
    )
    unpublished_changes: bool = Field(
        description="Whether the draft differs from the active version (true when unpublished)."
    )


class FlowPage(BaseModel):
    """One page of flows."""

    items: list[FlowSummary]
    total: int
    limit: int
    offset: int


class FlowPublish(BaseModel):
    """Publishing the draft as a new version."""

    model_config = ConfigDict(extra="forbid")

    note: str = Field(default="", max_length=2000, description="What changed, for the history.")


class FlowVersionSummary(BaseModel):
    """A published version as listed: everything but its graph."""

    id: uuid.UUID
    flow_id: uuid.UUID
    number: int
    note: str
    published_by: uuid.UUID | None
    published_at: datetime
    active: bool = Field(description="Whether this is the flow's active version.")


class FlowVersionRead(FlowVersionSummary):
    """A published version with its frozen graph."""

    graph: GraphSpec


class FlowVersionPage(BaseModel):
    """One page of versions, newest first."""

    items: list[FlowVersionSummary]
    total: int
    limit: int
    offset: int


class FlowExport(BaseModel):
    """A flow as a portable document; importing it creates a new draft flow.

    Credentials travel by name only: a node config field named ``credential`` holds the name
    of a credential of the workspace, never its secret.
    """

    model_config = ConfigDict(extra="forbid")

    format: Literal["socialflow.flow"] = Field(description="Always 'socialflow.flow'.")
    version: Literal[1] = Field(description="Version of this document format.")
    name: str = Field(min_length=1, max_length=NAME_MAX)
    description: str = Field(default="", max_length=DESCRIPTION_MAX)
    graph: GraphSpec
    credentials: list[str] = Field(
        default_factory=list,
        description="Names of the credentials the graph refers to (informative on import).",
    )
