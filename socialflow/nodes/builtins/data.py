"""Data nodes: build values from the trigger and upstream outputs."""

from __future__ import annotations

from typing import Any, ClassVar

from pydantic import Field

from socialflow.nodes._base import BaseNode, NodeConfig, NodeContext, Port
from socialflow.nodes._template import Template

__all__ = ["SetNode"]


class SetNode(BaseNode):
    """Builds named values from ``{{ ... }}`` templates; a lone expression keeps its type."""

    kind = "data.set"
    example_config: ClassVar[dict[str, Any]] = {"values": {"greeting": "Hi {{ trigger.username }}"}}
    title = "Set values"
    category = "data"
    icon = "pencil"
    inputs = (Port(name="in", many=True, description="Optional: values from upstream nodes."),)
    outputs = (Port(name="out", type="json", description="The values, by name."),)

    class Config(NodeConfig):
        values: dict[str, Template] = Field(
            min_length=1,
            max_length=100,
            description="Name → template, e.g. {'greeting': 'Hi {{ trigger.username }}'}.",
        )
        include_input: bool = Field(
            default=False, description="Start from the input's fields (when it is an object)."
        )

    config: Config

    async def run(self, ctx: NodeContext, *args: Any, **inputs: Any) -> dict[str, Any]:
        result: dict[str, Any] = {}
        if self.config.include_input:
            for item in inputs.get("in") or []:
                if isinstance(item, dict):
                    result.update(item)
        for name, template in self.config.values.items():
            result[name] = ctx.render(template, field_name=f"values.{name}")
        return {"out": result}
