"""Logic nodes: branch on a condition or a value, wait, or stop."""

from __future__ import annotations

import asyncio
from typing import Any, ClassVar, Literal

from pydantic import BaseModel, Field, model_validator

from socialflow.core.errors import UserError
from socialflow.nodes._base import BaseNode, NodeConfig, NodeContext, Port
from socialflow.nodes._template import Expression, Template

__all__ = ["ConditionNode", "DelayNode", "StopNode", "SwitchNode"]


class ConditionNode(BaseNode):
    """If/else: passes its input on through ``true`` or ``false``."""

    kind = "logic.condition"
    example_config: ClassVar[dict[str, Any]] = {"expression": "trigger.text is defined"}
    title = "Condition"
    category = "logic"
    icon = "git-branch"
    outputs = (
        Port(name="true", description="Fires when the expression is truthy."),
        Port(name="false", description="Fires when the expression is falsy."),
    )

    class Config(NodeConfig):
        expression: Expression = Field(
            min_length=1,
            max_length=2000,
            description=(
                "Expression over trigger, nodes and input, e.g. "
                "\"trigger.text | lower is containing('price')\""
            ),
        )

    config: Config

    async def run(self, ctx: NodeContext, *args: Any, **inputs: Any) -> dict[str, Any]:
        value = inputs.get("in")
        result = bool(ctx.evaluate(self.config.expression, field_name="expression"))
        return {"true" if result else "false": value}


class SwitchCase(BaseModel):
    """One route of a switch."""

    port: str = Field(
        pattern=r"^[a-z][a-z0-9_]{0,39}$", description="Output port name for this case."
    )
    equals: Any = Field(description="The value that selects this case.")


class SwitchNode(BaseNode):
    """Routes its input to the first case whose value equals the expression's value."""

    kind = "logic.switch"
    example_config: ClassVar[dict[str, Any]] = {
        "value": "trigger.kind",
        "cases": [{"port": "comment", "equals": "comment"}],
    }
    title = "Switch"
    category = "logic"
    icon = "split"
    outputs = (Port(name="default", description="Fires when no case matches."),)

    class Config(NodeConfig):
        value: Expression = Field(
            min_length=1, max_length=2000, description="Expression whose value picks the case."
        )
        cases: list[SwitchCase] = Field(
            min_length=1, max_length=50, description="Cases, tried in order."
        )

        @model_validator(mode="after")
        def _unique_ports(self) -> SwitchNode.Config:
            names = [case.port for case in self.cases]
            if len(set(names)) != len(names) or "default" in names:
                msg = "case ports must be unique and not 'default'"
                raise ValueError(msg)
            return self

    config: Config

    @classmethod
    def output_ports(cls, config: NodeConfig | None = None) -> tuple[Port, ...]:
        if not isinstance(config, cls.Config):
            return cls.outputs
        return (*(Port(name=case.port) for case in config.cases), *cls.outputs)

    async def run(self, ctx: NodeContext, *args: Any, **inputs: Any) -> dict[str, Any]:
        value = ctx.evaluate(self.config.value, field_name="value")
        for case in self.config.cases:
            if case.equals == value:
                return {case.port: inputs.get("in")}
        return {"default": inputs.get("in")}


class DelayNode(BaseNode):
    """Waits, then passes its input on."""

    kind = "logic.delay"
    example_config: ClassVar[dict[str, Any]] = {"seconds": 0.01}
    title = "Delay"
    category = "logic"
    icon = "hourglass"

    class Config(NodeConfig):
        seconds: float = Field(gt=0, le=86400, description="How long to wait, in seconds.")

    config: Config

    async def run(self, ctx: NodeContext, *args: Any, **inputs: Any) -> dict[str, Any]:
        limit = ctx.settings.engine.max_delay_seconds
        if self.config.seconds > limit:
            msg = (
                f"node {ctx.node_id!r}: delay of {self.config.seconds} s is longer than this "
                f"server allows ({limit} s)"
            )
            raise UserError(msg, code="delay_too_long")
        await asyncio.sleep(self.config.seconds)
        return {"out": inputs.get("in")}


class StopNode(BaseNode):
    """Ends this branch: quietly, or by failing the run with a message."""

    kind = "logic.stop"
    title = "Stop"
    category = "logic"
    icon = "octagon"
    outputs: ClassVar[tuple[Port, ...]] = ()

    class Config(NodeConfig):
        outcome: Literal["success", "error"] = Field(
            default="success", description="'error' fails the run with the message."
        )
        message: Template = Field(
            default="", max_length=2000, description="Why the flow stopped; templates allowed."
        )

    config: Config

    async def run(self, ctx: NodeContext, *args: Any, **inputs: Any) -> dict[str, Any]:
        message = ctx.render_text(self.config.message, field_name="message")
        if self.config.outcome == "error":
            raise UserError(message or "stopped with an error", code="stopped")
        ctx.logger.info("flow stopped", reason=message)
        return {}
